"""The celestial WCS of a reduced image, from its header cards."""

from __future__ import annotations

__all__ = ("sky_projection_from_header",)

import re
import warnings
from collections.abc import Mapping
from typing import Any

import astropy.wcs
from astropy.io import fits

from lsst.images import Box, SkyProjection
from lsst.images.cameras import Detector

_WCS_CARD = re.compile(
    r"(WCSAXES|CTYPE[12]|CUNIT[12]|CRVAL[12]|CRPIX[12]|CDELT[12]|CD[12]_[12]|PC[12]_[12]|PV[12]_\d+"
    r"|RADESYS|EQUINOX|LONPOLE|LATPOLE)"
)


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
        The WCS (ZPN for CASU, TPV for the DECam CP).  Only the standard
        WCS cards are used: CASU also writes the pre-standard ``PROJPn``
        copies of ``PV2_n``, IRAF the ``WAT*`` cards, and the deprecated
        ``RADECSYS`` is used only where ``RADESYS`` is absent.

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
        if _WCS_CARD.fullmatch(key):
            header[key] = value
    if "RADESYS" not in header and "RADECSYS" in metadata:
        header["RADESYS"] = str(metadata["RADECSYS"]).strip()
    with warnings.catch_warnings():
        # astropy notes the CD matrix supersedes absent CDELT; nothing to fix.
        warnings.simplefilter("ignore", astropy.wcs.FITSFixedWarning)
        fits_wcs = astropy.wcs.WCS(header)
    return SkyProjection.from_fits_wcs(fits_wcs, pixel_frame=detector.frame, x0=bbox.x.start, y0=bbox.y.start)
