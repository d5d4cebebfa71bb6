"""Which header cards make a celestial WCS: the one rule that ingest (sky
regions, header checks) and isr (the exposure's sky projection) share."""

from __future__ import annotations

__all__ = ("WCS_KEYWORD_PREFIXES", "is_wcs_keyword", "radesys_from_deprecated")

from collections.abc import Callable
from typing import Any

WCS_KEYWORD_PREFIXES = (
    "WCSAXES",
    "CTYPE",
    "CUNIT",
    "CRVAL",
    "CRPIX",
    "CDELT",
    "CD1_",
    "CD2_",
    "PC1_",
    "PC2_",
    "PV1_",
    "PV2_",
    "LONPOLE",
    "LATPOLE",
    "RADESYS",
    "EQUINOX",
)
"""Prefixes of the standard keywords that define a celestial WCS.  Others are
left out: CASU also writes the pre-standard ``PROJPn`` copies of ``PV2_n``,
IRAF the ``WAT*`` cards, and the deprecated ``RADECSYS`` is read only as
`radesys_from_deprecated` says.  Parsing these alone is much faster than
parsing a 300-card header."""


def is_wcs_keyword(keyword: str) -> bool:
    """Return whether a keyword is one of `WCS_KEYWORD_PREFIXES`'.

    Parameters
    ----------
    keyword : `str`
        Header keyword.

    Returns
    -------
    is_wcs : `bool`
        Whether the keyword defines part of the celestial WCS.
    """
    return keyword.startswith(WCS_KEYWORD_PREFIXES)


def radesys_from_deprecated(get: Callable[[str], Any]) -> str | None:
    """Return the RADESYS value to add to a header's WCS cards, if any.

    Parameters
    ----------
    get : `~collections.abc.Callable` [[`str`], `~typing.Any`]
        Look-up of a keyword's value in the header (`None` if absent), e.g.
        ``header.get``.

    Returns
    -------
    radesys : `str` or `None`
        The deprecated ``RADECSYS`` (CASU writes it) where ``RADESYS`` is
        absent, so that WCSLIB neither warns about it nor assumes a
        reference system; `None` where nothing is to be added.
    """
    if get("RADESYS") is not None:
        return None
    deprecated = get("RADECSYS")
    return None if deprecated is None else str(deprecated).strip()
