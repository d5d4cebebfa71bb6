"""Sky regions of detectors and visits, from the WCS cards of each HDU."""

from __future__ import annotations

__all__ = ("detector_region", "union_region")

from collections.abc import Iterable

import numpy as np
from astropy.io.fits import Card
from astropy.wcs import Wcsprm

from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

from ..wcs_cards import WCS_KEYWORD_PREFIXES, radesys_from_deprecated
from .fits_scan import HduHeader


def detector_region(hdu: HduHeader, shape: tuple[int, int]) -> ConvexPolygon:
    """Return the sky polygon covered by an image HDU.

    Parameters
    ----------
    hdu : `HduHeader`
        The header with the WCS.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        Convex hull of the outer pixel edges' corners and midpoints.  The
        midpoints keep the polygon outside the pixels where the distortion
        (ZPN for VIRCAM) bows an edge outwards.

    Raises
    ------
    ValueError
        Raised if the header has no celestial WCS or it maps the image
        outside the sky.
    """
    # Wcsprm parses the cards in C; astropy.wcs.WCS would first round-trip
    # them through an astropy Header, which costs ten times more.
    cards = hdu.card_images(WCS_KEYWORD_PREFIXES)
    radesys = radesys_from_deprecated(hdu.get)
    if radesys is not None:
        cards += Card("RADESYS", radesys).image
    wcs = Wcsprm(header=cards.encode("ascii"))
    if wcs.lng < 0 or wcs.lat < 0:
        raise ValueError(f"HDU {hdu.index} has no celestial WCS")
    ny, nx = shape
    xs = np.array([-0.5, 0.5 * (nx - 1), nx - 0.5])
    ys = np.array([-0.5, 0.5 * (ny - 1), ny - 0.5])
    x, y = np.meshgrid(xs, ys)
    on_edge = (x != xs[1]) | (y != ys[1])
    pixels = np.zeros((int(on_edge.sum()), wcs.naxis))
    pixels[:, 0] = x[on_edge]
    pixels[:, 1] = y[on_edge]
    world = wcs.p2s(pixels, 0)["world"]
    ra, dec = world[:, wcs.lng], world[:, wcs.lat]
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise ValueError(f"the WCS of HDU {hdu.index} maps the image edges outside the sky")
    return _hull(UnitVector3d(LonLat.fromDegrees(float(a), float(d))) for a, d in zip(ra, dec, strict=True))


def union_region(regions: Iterable[ConvexPolygon]) -> ConvexPolygon:
    """Return the convex hull of several polygons (a visit's footprint).

    Parameters
    ----------
    regions : iterable [`lsst.sphgeom.ConvexPolygon`]
        Detector regions.

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        The smallest convex polygon containing them all, gaps between
        detectors included, as a visit region is used for coarse spatial
        queries and the per-detector regions for precise ones.
    """
    return _hull(vertex for region in regions for vertex in region.getVertices())


def _hull(points: Iterable[UnitVector3d]) -> ConvexPolygon:
    # convexHull raises ValueError for degenerate point sets.
    return ConvexPolygon.convexHull(list(points))
