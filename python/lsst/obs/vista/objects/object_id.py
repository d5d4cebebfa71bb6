"""Object IDs unique across a skymap: tract, patch and running number.

An object ID packs the tract, the patch and the object's running number in
its patch's merged detection catalogue into one positive 64-bit integer::

    objectId = tract << (PATCH_BITS + ROW_BITS) | patch << ROW_BITS | row

``row`` counts from 1 (0 is "no object": a ``parentObjectId`` of 0 means
the object was not deblended from a parent).  The packing is reversible
(`unpack_object_ids`), so an ID says which patch measured its object, and
it depends on nothing but the data ID and the detection order, so a rerun
gives the same IDs.
"""

from __future__ import annotations

__all__ = ("PATCH_BITS", "ROW_BITS", "TRACT_BITS", "pack_object_ids", "unpack_object_ids")

import numpy as np

from ..id_packing import BitFieldPacker

ROW_BITS = 30
"""Bits of the running number: a billion objects per patch, far more than a
4000 x 4000 patch can separate."""

PATCH_BITS = 14
"""Bits of the patch ID: up to 16383 patches per tract (Rubin's and HSC's
skymaps have at most a few hundred)."""

TRACT_BITS = 63 - PATCH_BITS - ROW_BITS
"""Bits of the tract ID: the rest of 63 bits (524287 tracts; a rings skymap
of 120 rings has about 19000), the sign bit staying clear so that IDs are
positive in the signed 64-bit integers of Arrow, Parquet and databases."""

_PACKER = BitFieldPacker("object ID", (("tract", TRACT_BITS), ("patch", PATCH_BITS), ("row", ROW_BITS)))


def pack_object_ids(tract: int, patch: int, rows: np.ndarray) -> np.ndarray:
    """Return the object IDs of rows of one patch's catalogue.

    Parameters
    ----------
    tract, patch : `int`
        The patch's tract and sequential patch ID.
    rows : `numpy.ndarray` [`int`]
        Running numbers, ``1 <= row < 2**ROW_BITS``.

    Returns
    -------
    ids : `numpy.ndarray` [`numpy.int64`]
        The packed IDs.

    Raises
    ------
    ValueError
        Raised if a part does not fit its bits.
    """
    return _PACKER.pack(tract, patch, rows=rows)


def unpack_object_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the tracts, patches and rows that object IDs were packed from.

    Parameters
    ----------
    ids : `numpy.ndarray` [`int`]
        Object IDs made by `pack_object_ids`.

    Returns
    -------
    tracts, patches, rows : `numpy.ndarray` [`numpy.int64`]
        The parts, in the order `pack_object_ids` takes them.
    """
    tracts, patches, rows = _PACKER.unpack(ids)
    return tracts, patches, rows
