"""The celestial WCS of a reduced image, from its header cards."""

from __future__ import annotations

__all__ = ("sky_projection_from_header",)

import warnings
from collections.abc import Mapping
from typing import Any

import astropy.wcs
from astropy.io import fits

from lsst.images import Box, SkyProjection
from lsst.images.cameras import Detector

from ..wcs_cards import is_wcs_keyword, radesys_from_deprecated


def sky_projection_from_header(metadata: Mapping[str, Any], detector: Detector, bbox: Box) -> SkyProjection:
    """Return the sky projection of a header's celestial WCS.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged primary + extension header.
    detector : `lsst.images.cameras.Detector`
        Detector whose frame the projection maps from.
    bbox : `lsst.images.Box`
        Bounding box of the image; FITS pixel (1, 1) of the header is its
        first pixel.

    Returns
    -------
    projection : `lsst.images.SkyProjection`
        The WCS (ZPN for CASU, TPV for the DECam CP), from the standard
        WCS cards only (`lsst.obs.vista.wcs_cards`, as ingest's regions).

    Notes
    -----
    lsst-images (like afw before it) takes the celestial coordinates of
    every WCS to be ICRS.  CASU and the DECam CP label theirs FK5 J2000, a
    label inherited from older software: their solutions are fitted to
    2MASS and Gaia, which are ICRS catalogues.  So the coordinate values are
    kept as they are, not transformed by the FK5-to-ICRS rotation (tens of
    milliarcseconds), which would move every source by that much.
    """
    header = fits.Header()
    for key, value in metadata.items():
        if is_wcs_keyword(key):
            header[key] = value
    radesys = radesys_from_deprecated(metadata.get)
    if radesys is not None:
        header["RADESYS"] = radesys
    with warnings.catch_warnings():
        # astropy notes the CD matrix supersedes absent CDELT; nothing to fix.
        warnings.simplefilter("ignore", astropy.wcs.FITSFixedWarning)
        fits_wcs = astropy.wcs.WCS(header)
    return SkyProjection.from_fits_wcs(fits_wcs, pixel_frame=detector.frame, x0=bbox.x.start, y0=bbox.y.start)
