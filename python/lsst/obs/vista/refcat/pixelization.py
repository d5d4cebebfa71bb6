"""The sky pixelization reference catalogues are sharded on."""

from __future__ import annotations

__all__ = ("REFCAT_DIMENSION", "REFCAT_PIXELIZATION", "htm7_index", "htm7_overlapping")

import numpy as np

from lsst.sphgeom import HtmPixelization, LonLat, Region, UnitVector3d

REFCAT_DIMENSION = "htm7"
"""Butler dimension of a reference catalogue shard: the level-7 trixels of
the Hierarchical Triangular Mesh (about 0.3 deg² each), Rubin's choice for
its reference catalogues."""

REFCAT_PIXELIZATION = HtmPixelization(7)
"""The pixelization `REFCAT_DIMENSION` indexes."""


def htm7_index(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Return the htm7 trixel of each position.

    Parameters
    ----------
    ra, dec : `numpy.ndarray`
        ICRS coordinates in degrees.

    Returns
    -------
    index : `numpy.ndarray` [`numpy.int64`]
        Trixel ID of each position.
    """
    return np.fromiter(
        (
            REFCAT_PIXELIZATION.index(UnitVector3d(LonLat.fromDegrees(lon, lat)))
            for lon, lat in zip(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float), strict=True)
        ),
        dtype=np.int64,
        count=len(ra),
    )


def htm7_overlapping(region: Region) -> list[int]:
    """Return the htm7 trixels that may overlap a sky region.

    Parameters
    ----------
    region : `lsst.sphgeom.Region`
        The region, e.g. a detector's `lsst.sphgeom.ConvexPolygon`.

    Returns
    -------
    trixels : `list` [`int`]
        Sorted trixel IDs: every trixel that overlaps the region, and
        possibly a few that only come close (the envelope is conservative).
    """
    return [
        trixel for begin, end in REFCAT_PIXELIZATION.envelope(region).ranges() for trixel in range(begin, end)
    ]
