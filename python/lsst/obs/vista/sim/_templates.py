"""The real CASU headers that synthetic files are built on.

Each product copies the cards of a real header dump (see
``data/vircam_headers/README.md``) and changes only the values that
describe the synthetic observation, so that card names, order, comments and
quirks stay those of real CASU files.
"""

from __future__ import annotations

__all__ = (
    "CATALOG_COLUMNS",
    "CatalogColumn",
    "catalog_template",
    "extension_template",
    "primary_template",
    "stack_cd_matrix",
    "tile_template",
)

import dataclasses
import re
from functools import cache

import numpy as np
from astropy.io import fits

from ..casu_headers import read_header_dump

# Cards whose values belong to the real files' bytes, not to the
# observation; astropy recomputes them when writing.
_STALE = ("CHECKSUM", "DATASUM")

# Structure of the dumped HDU (its kind, shape and table layout), which the
# written HDU defines itself.
_STRUCTURE = re.compile(
    r"(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|EXTEND|TFIELDS|T(TYPE|FORM|UNIT)\d+)$"
)


def _clean(header: fits.Header, structural: bool) -> fits.Header:
    result = fits.Header()
    for card in header.cards:
        keyword = card.keyword
        if keyword in _STALE or (keyword == "" and not str(card.value).strip()):
            continue
        if not structural and _STRUCTURE.match(keyword):
            continue
        result.append(card, end=True)
    return result


@cache
def _primary() -> fits.Header:
    return _clean(read_header_dump("4_cell7"), structural=True)


@cache
def _extension() -> fits.Header:
    return _clean(read_header_dump("4_cell8"), structural=True)


@cache
def _tile() -> fits.Header:
    return _clean(read_header_dump("4_cell19"), structural=False)


@cache
def _catalog() -> fits.Header:
    return _clean(read_header_dump("2_cell111"), structural=False)


def primary_template() -> fits.Header:
    """Return a copy of the primary header of a real pawprint stack."""
    return _primary().copy()


def extension_template() -> fits.Header:
    """Return a copy of extension ``DET1.CHIP1`` of a real pawprint stack,
    structural cards included."""
    return _extension().copy()


def tile_template() -> fits.Header:
    """Return a copy of the image header of a real tile, without its
    structural cards (the dump mixes those of a compressed HDU)."""
    return _tile().copy()


def catalog_template() -> fits.Header:
    """Return a copy of the non-column cards of a real tile catalogue."""
    return _catalog().copy()


def stack_cd_matrix() -> np.ndarray:
    """Return the CD matrix (deg/pixel) of the real pawprint stack."""
    header = _extension()
    return np.array([[header["CD1_1"], header["CD1_2"]], [header["CD2_1"], header["CD2_2"]]])


@dataclasses.dataclass(frozen=True)
class CatalogColumn:
    """One column of the CASU source catalogue."""

    name: str
    format: str
    unit: str
    comment: str
    """Comment of the TTYPE card (the column's description)."""


def _catalog_columns() -> tuple[CatalogColumn, ...]:
    header = read_header_dump("2_cell111")
    return tuple(
        CatalogColumn(
            name=header[f"TTYPE{n}"].strip(),
            format=header[f"TFORM{n}"].strip(),
            unit=header[f"TUNIT{n}"].strip(),
            comment=header.comments[f"TTYPE{n}"],
        )
        for n in range(1, header["TFIELDS"] + 1)
    )


CATALOG_COLUMNS = _catalog_columns()
"""The 80 columns of a CASU catalogue, as in the real tile catalogue."""
