"""Checking the cards of a product's headers against its dataset policy.

A file is rejected at ingest, with one line naming the HDU and the card,
when a card the policy declares is missing, mistyped or out of range, or,
for a product whose policy says its datasets carry a celestial WCS, when
that WCS cannot describe the sky, so that the tasks that later read the
datasets never meet such a header.
"""

from __future__ import annotations

__all__ = ("HeaderError", "check_cards", "check_celestial_wcs", "describe_hdu")

import math
from collections.abc import Mapping
from typing import Any

import astropy.time
import numpy as np

from lsst.utils import doImport

from ..wcs_cards import is_wcs_keyword
from .fits_scan import HduHeader
from .policy import CardCheck, ProductPolicy

_ABSENT = object()

_WCS_TEXT_PREFIXES = ("CTYPE", "CUNIT", "RADESYS")
"""WCS keywords (`lsst.obs.vista.wcs_cards.is_wcs_keyword`) whose values are text; the
others are numbers."""

_SINGULAR_CONDITION = 1e12
"""Condition number above which a pixel-to-sky matrix is taken as singular:
its two pixel axes then point along (nearly) one direction of the sky, or
nowhere (an all-zero matrix)."""


class HeaderError(ValueError):
    """Raised when a header card makes a file unusable; the message is one
    line naming the HDU and the card."""


def describe_hdu(hdu: HduHeader) -> str:
    """Return how messages name an HDU.

    Parameters
    ----------
    hdu : `HduHeader`
        The HDU.

    Returns
    -------
    name : `str`
        ``primary HDU``, ``extension DET1.CHIP3`` or ``HDU 2`` (an
        extension without EXTNAME).
    """
    if hdu.index == 0:
        return "primary HDU"
    return f"extension {hdu.extname}" if hdu.extname else f"HDU {hdu.index}"


def check_cards(product: ProductPolicy, primary: HduHeader, datasets: Mapping[Any, HduHeader]) -> None:
    """Check the policy's cards in the header of every dataset.

    Parameters
    ----------
    product : `ProductPolicy`
        Policy of the file's product.
    primary : `HduHeader`
        The file's primary header.
    datasets : `~collections.abc.Mapping` [`object`, `HduHeader`]
        The HDU of each dataset; each is checked merged with the primary
        (its own cards first).

    Raises
    ------
    HeaderError
        Raised for the first card, in policy order, that is missing,
        mistyped or out of range in some dataset's header.
    """
    for check in product.cards:
        for hdu in sorted(datasets.values(), key=lambda h: h.index):
            holder = hdu if hdu.get(check.keyword, _ABSENT) is not _ABSENT else primary
            value = holder.get(check.keyword, _ABSENT)
            if value is _ABSENT:
                if check.required:
                    where = describe_hdu(hdu) + ("" if hdu is primary else " and the primary HDU")
                    raise HeaderError(
                        f"{where} {'has' if hdu is primary else 'have'} no {check.keyword} card"
                    )
                continue
            problem = _problem(check, value)
            if problem is not None:
                raise HeaderError(f"{describe_hdu(holder)} has {check.keyword} = {value!r}{problem}")
    if product.celestial_wcs:
        for hdu in sorted(datasets.values(), key=lambda h: h.index):
            check_celestial_wcs(hdu)


def check_celestial_wcs(hdu: HduHeader) -> None:
    """Check that the WCS cards of an HDU can describe the sky.

    Parameters
    ----------
    hdu : `HduHeader`
        The HDU whose own WCS cards (`lsst.obs.vista.wcs_cards`, as the region of
        the dataset is computed from them) hold a celestial WCS.

    Raises
    ------
    HeaderError
        Raised, naming the HDU and the cards, if a numeric WCS card is not a
        finite number, the reference latitude (``CRVALn`` of the axis whose
        ``CTYPEn`` is a latitude, e.g. ``DEC--ZPN``) is outside [-90, 90]
        degrees, or the matrix from pixels to the sky (``CDi_j``, else
        ``PCi_j`` times ``CDELTi``, with the FITS defaults for absent cards)
        is singular.  WCSLIB would otherwise fail later with a message that
        names neither.
    """
    where = describe_hdu(hdu)
    keywords = [keyword for keyword in hdu.keywords() if is_wcs_keyword(keyword)]
    for keyword in keywords:
        value = hdu.get(keyword)
        if keyword.startswith(_WCS_TEXT_PREFIXES):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise HeaderError(f"{where} has {keyword} = {value!r}, not a finite number")
    for axis in (1, 2):
        ctype = str(hdu.get(f"CTYPE{axis}", ""))
        latitude = hdu.get(f"CRVAL{axis}", 0.0)
        if _is_latitude(ctype) and abs(latitude) > 90:
            raise HeaderError(
                f"{where} has CRVAL{axis} = {latitude!r}, "
                f"not a latitude in [-90, 90] (CTYPE{axis} = {ctype!r})"
            )
    uses_cd = any(k.startswith(("CD1_", "CD2_")) for k in keywords) and not any(
        k.startswith(("PC1_", "PC2_")) for k in keywords
    )
    if uses_cd:
        names = [f"CD{i}_{j}" for i in (1, 2) for j in (1, 2)]
        matrix = np.array([[hdu.get(f"CD{i}_{j}", 0.0) for j in (1, 2)] for i in (1, 2)], dtype=float)
        kind = "CD"
    else:
        names = [f"PC{i}_{j}" for i in (1, 2) for j in (1, 2)] + ["CDELT1", "CDELT2"]
        pc = np.array([[hdu.get(f"PC{i}_{j}", float(i == j)) for j in (1, 2)] for i in (1, 2)], dtype=float)
        matrix = np.diag([hdu.get("CDELT1", 1.0), hdu.get("CDELT2", 1.0)]) @ pc
        kind = "PC x CDELT"
    if not np.linalg.cond(matrix) <= _SINGULAR_CONDITION:
        cards = ", ".join(f"{name} = {hdu.get(name)!r}" for name in names if name in keywords)
        raise HeaderError(
            f"{where} has {cards}: a singular {kind} matrix, which maps the pixels to no area of sky"
        )


def _is_latitude(ctype: str) -> bool:
    """Return whether a CTYPE is a celestial latitude (``DEC--TAN``,
    ``GLAT-CAR``, ``xyLT-...``), as the FITS WCS paper II names them."""
    return ctype[:4] == "DEC-" or ctype[1:4] == "LAT" or ctype[2:4] == "LT"


def _problem(check: CardCheck, value: Any) -> str | None:
    """Return what is wrong with a value (the end of the message), or
    `None` if it is usable."""
    if check.type in ("number", "integer"):
        if check.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            return ", not an integer"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return ", not a finite number"
        if check.above is not None and not value > check.above:
            return f", not > {check.above:g}"
        return None
    if not isinstance(value, str):
        return f", not a {'string' if check.type == 'string' else check.type}"
    if check.type == "date":
        try:
            astropy.time.Time(value, format="fits", scale="utc")
        except ValueError:
            return ", not an ISO date and time (YYYY-MM-DDThh:mm:ss)"
    elif check.type == "filter" and value.strip() not in check.filters:
        return f", not a filter of the camera ({', '.join(check.filters)})"
    if check.parser is not None:
        try:
            doImport(check.parser)(value)
        except ValueError as err:
            return f": {' '.join(str(err).split()).rstrip('.')}"
    return None
