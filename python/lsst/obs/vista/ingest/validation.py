"""Checking the cards of a product's headers against its dataset policy.

A file is rejected at ingest, with one line naming the HDU and the card,
when a card the policy declares is missing, mistyped or out of range, so
that the tasks that later read the datasets never meet such a header.
"""

from __future__ import annotations

__all__ = ("HeaderError", "check_cards", "describe_hdu")

import math
from collections.abc import Mapping
from typing import Any

import astropy.time

from lsst.utils import doImport

from .fits_scan import HduHeader
from .policy import CardCheck, ProductPolicy

_ABSENT = object()


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
