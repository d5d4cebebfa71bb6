"""Read-only butler formatters for ingested multi-extension FITS products.

One file holds the datasets of several detectors (a CASU stack has one image
extension per detector, a DECam CP file one per CCD), so a dataset is
located inside its file by the HDU layout of its product in the
instrument's dataset policy (``policy/<instrument>/datasets.yaml``): the HDU
whose EXTNAME the detector's ID or name fills in, or a fixed HDU index for
products without detectors.  Only that HDU's pixels are read; tile-compressed
(fpack) HDUs are decompressed by astropy.
"""

from __future__ import annotations

__all__ = ("ImageHduFormatter", "TableHduFormatter", "flat_metadata", "read_image_hdu")

import os
from collections.abc import Iterable
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from lsst.daf.butler import FormatterV2
from lsst.images import Box, Image

from .ingest.policy import ProductPolicy, policy_for_instrument

_SKIPPED_KEYWORDS = frozenset({"", "COMMENT", "HISTORY"})


def flat_metadata(headers: Iterable[fits.Header]) -> dict[str, bool | int | float | str | None]:
    """Merge FITS headers into one flat mapping of scalar card values.

    Parameters
    ----------
    headers : iterable [`astropy.io.fits.Header`]
        Headers in increasing priority (a later header's card replaces an
        earlier one with the same keyword, as for an extension read with
        its primary header).

    Returns
    -------
    metadata : `dict` [`str`, `bool` | `int` | `float` | `str` | `None`]
        Card values keyed by keyword; HIERARCH keywords appear without the
        ``HIERARCH`` prefix (``ESO DET CHIP NO``), COMMENT, HISTORY and
        blank cards are left out, and cards without a value map to `None`.
        A keyword repeated within one header keeps its first value, as
        `astropy.io.fits.Header` lookups do.
    """
    metadata: dict[str, bool | int | float | str | None] = {}
    for header in headers:
        seen: set[str] = set()
        for card in header.cards:
            keyword = card.keyword
            if keyword in _SKIPPED_KEYWORDS or keyword in seen:
                continue
            seen.add(keyword)
            value = card.value
            metadata[keyword] = value if isinstance(value, bool | int | float | str) else None
    return metadata


def read_image_hdu(
    path: str | os.PathLike[str], hdu: str | int, *, unit: u.UnitBase | None, bbox: Box | None = None
) -> Image:
    """Read one image HDU as `ImageHduFormatter` presents it.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        The FITS file.
    hdu : `str` or `int`
        EXTNAME or index of the HDU.
    unit : `astropy.units.UnitBase` or `None`
        Unit of the pixel values.
    bbox : `lsst.images.Box`, optional
        Cutout to read; the whole HDU by default.

    Returns
    -------
    image : `lsst.images.Image`
        Pixels (BSCALE/BZERO applied; float32 if floating point, the stored
        integer type otherwise, native byte order) with the primary header
        merged with the HDU's as metadata (`flat_metadata`).
    """
    # Not memory-mapped: astropy refuses to map data it has to scale, and
    # lazy loading already reads nothing but this HDU's pixels.
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
        selected = hdus[hdu]
        full_bbox = Box.from_shape(selected.shape)
        # Before the pixels are read: astropy rewrites BITPIX, BSCALE and
        # BZERO of a header whose data it has scaled.
        metadata = flat_metadata([hdus[0].header, selected.header])
        if bbox is None:
            bbox = full_bbox
            array = selected.data
        else:
            array = selected.section[bbox.y.slice_within(full_bbox.y), bbox.x.slice_within(full_bbox.x)]
        return Image(_native(array), bbox=bbox, unit=unit, metadata=metadata)


class _PolicyFormatter(FormatterV2):
    """Locate the HDU of a dataset from the product's policy."""

    can_read_from_local_file: ClassVar[bool] = True
    supported_extensions: ClassVar[frozenset[str]] = frozenset({".fit", ".fits", ".fz"})

    @property
    def _product(self) -> ProductPolicy:
        policy = policy_for_instrument(str(self.data_id["instrument"]))
        return policy.products[self.dataset_ref.datasetType.name]

    def _hdu_key(self, path: str) -> str | int:
        """Return the EXTNAME or index of the dataset's HDU in ``path``."""
        layout = self._product.hdu
        if layout.index is not None:
            return layout.index
        detector = int(self.data_id["detector"])
        if layout.by_card:
            return _index_by_card(path, layout.detector_card, detector)
        return layout.extname_for(detector)


class ImageHduFormatter(_PolicyFormatter):
    """Read one image HDU of a product as an `lsst.images.Image`.

    The pixel values have BSCALE/BZERO applied: `numpy.float32` when the
    data are floating point or the scaling makes them so (CASU stacks, CP
    images and weights), the stored integer type otherwise (confidence maps,
    quality masks).  The unit is the product's in the policy (none for
    dimensionless maps).  The ``metadata`` holds the primary header merged
    with the extension header (see `flat_metadata`); BITPIX, BSCALE and BZERO
    there describe the file, not the returned array.

    The ``bbox`` parameter reads a cutout; the ``bbox`` and ``unit``
    components are answered from the header alone.
    """

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        # Docstring inherited.
        unit = u.Unit(self._product.unit) if self._product.unit is not None else None
        if component == "unit":
            return unit
        if component == "bbox":
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
                return Box.from_shape(hdus[self._hdu_key(path)].shape)
        bbox: Box | None = (self.file_descriptor.parameters or {}).get("bbox")
        image = read_image_hdu(path, self._hdu_key(path), unit=unit, bbox=bbox)
        return image if component is None else getattr(image, component)


class TableHduFormatter(_PolicyFormatter):
    """Read one binary-table HDU of a catalogue (CASU's) as an
    `astropy.table.Table`, with the HDU's header cards in ``meta``."""

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        # Docstring inherited.
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdus:
            # Copy the columns out of the memory map before the file closes.
            # CASU writes non-FITS units (e.g. "Blank67"); keep them as
            # unrecognised units rather than warn once per column.
            table = Table.read(
                hdus[self._hdu_key(path)], character_as_bytes=False, unit_parse_strict="silent"
            )
            return table.copy(copy_data=True)


def _index_by_card(path: str, card: str | None, detector: int) -> int:
    """Return the index of the HDU with data whose ``card`` is ``detector``
    (ingest checked that exactly one is)."""
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
        for index, hdu in enumerate(hdus):
            if hdu.header.get(card) == detector and hdu.header.get("NAXIS", 0) > 0:
                return index
    raise LookupError(f"{path}: no HDU with {card} = {detector}")


def _native(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as float32 if scaling made it floating point, in
    native byte order either way, owning its memory."""
    if np.issubdtype(array.dtype, np.floating):
        return np.array(array, dtype=np.float32)
    return np.array(array, dtype=array.dtype.newbyteorder("="))
