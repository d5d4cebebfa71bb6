"""Write a `lsst.images.VisitImage` in the FITS layout of an
`lsst.afw.image.Exposure`, for users who also run the full Rubin stack."""

from __future__ import annotations

__all__ = ("legacy_plane_map", "write_legacy_exposure")

from pathlib import Path

import numpy as np
from astropy.io import fits

from lsst.images import MaskPlane, MaskSchema, VisitImage, get_legacy_visit_image_mask_planes

_MAX_LEGACY_PLANES = 32
"""afw masks are int32: one bit per plane."""


def legacy_plane_map(schema: MaskSchema) -> dict[str, MaskPlane]:
    """Return the legacy (afw) name of every plane of a schema.

    Parameters
    ----------
    schema : `lsst.images.MaskSchema`
        Schema of the mask to write.

    Returns
    -------
    plane_map : `dict` [`str`, `lsst.images.MaskPlane`]
        Legacy name to plane, in schema order: the names lsst-images maps
        from (``SAT`` for ``SATURATED``, ``INTRP`` for ``INTERPOLATED`` ...)
        and the plane's own name for planes afw does not know (e.g.
        ``LOW_CONFIDENCE``).  This is the ``plane_map`` to give
        `lsst.images.MaskedImage.read_legacy` to read the file back.
    """
    legacy_names = {plane.name: legacy for legacy, plane in get_legacy_visit_image_mask_planes().items()}
    return {legacy_names.get(plane.name, plane.name): plane for plane in schema if plane is not None}


def write_legacy_exposure(exposure: VisitImage, path: str | Path, *, overwrite: bool = False) -> None:
    """Write an exposure as afw's ``Exposure.writeFits`` lays it out.

    Parameters
    ----------
    exposure : `lsst.images.VisitImage`
        The exposure.
    path : `str` or `pathlib.Path`
        Output file.
    overwrite : `bool`
        Replace an existing file.

    Notes
    -----
    HDU 0 holds the metadata: ``INSTRUME``, ``FILTER`` (physical filter),
    ``BAND``, ``DATE-OBS``, ``EXPTIME``, ``DETNAME``, ``PSFSIGMA`` when the
    PSF is Gaussian, and the exposure's metadata as afw's
    ``LSST IMAGES KEY n`` / ``LSST IMAGES VALUE n`` pairs, which lsst-images
    restores on reading.  HDUs 1-3 are ``IMAGE``, ``MASK`` and ``VARIANCE``,
    each with ``EXTTYPE``, the FITS WCS of the sky projection, ``LTV1``/``LTV2``
    (minus the first pixel's coordinates) and the equivalent linear ``A``
    WCS; the mask is int32 with one ``MP_<name>`` card per plane giving its
    bit.  afw's archive HDUs (PSF, photometric calibration, detector) are
    not written: afw reads such a file as an Exposure without them.
    """
    plane_map = legacy_plane_map(exposure.mask.schema)
    if len(plane_map) > _MAX_LEGACY_PLANES:
        raise ValueError(f"{len(plane_map)} mask planes do not fit in an afw mask ({_MAX_LEGACY_PLANES}).")
    bbox = exposure.bbox
    wcs_header = exposure.sky_projection.as_fits_wcs(bbox, allow_approximation=True).to_header(relax=True)

    def image_header(extname: str) -> fits.Header:
        header = fits.Header()
        header["EXTTYPE"] = extname
        header["EXTNAME"] = extname
        header["INHERIT"] = True
        header.update(wcs_header)
        header["LTV1"] = -bbox.x.start
        header["LTV2"] = -bbox.y.start
        for key, value in (
            ("CTYPE1A", "LINEAR"),
            ("CTYPE2A", "LINEAR"),
            ("CRPIX1A", 1.0),
            ("CRPIX2A", 1.0),
            ("CRVAL1A", float(bbox.x.start)),
            ("CRVAL2A", float(bbox.y.start)),
            ("CUNIT1A", "PIXEL"),
            ("CUNIT2A", "PIXEL"),
        ):
            header[key] = value
        return header

    legacy_mask = np.zeros(bbox.shape, dtype=np.int32)
    mask_header = image_header("MASK")
    for bit, (legacy_name, plane) in enumerate(plane_map.items()):
        # Bit 31 is the sign bit of afw's int32 mask; build it in int64.
        legacy_mask |= (exposure.mask.get(plane.name).astype(np.int64) << bit).astype(np.int32)
        # afw writes plane names longer than FITS's 8 characters as HIERARCH.
        mask_header[f"HIERARCH MP_{legacy_name}"] = bit

    image = image_header("IMAGE")
    variance = image_header("VARIANCE")
    image["BUNIT"] = exposure.unit.to_string(format="fits")
    variance["BUNIT"] = (exposure.unit**2).to_string(format="fits")

    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(header=_primary_header(exposure)),
            fits.ImageHDU(exposure.image.array, header=image),
            fits.ImageHDU(legacy_mask, header=mask_header),
            fits.ImageHDU(exposure.variance.array, header=variance),
        ]
    )
    hdus.writeto(path, overwrite=overwrite)


def _primary_header(exposure: VisitImage) -> fits.Header:
    header = fits.Header()
    obs_info = exposure.obs_info
    header["INSTRUME"] = obs_info.instrument
    header["FILTER"] = exposure.physical_filter
    header["BAND"] = exposure.band
    if obs_info.datetime_begin is not None:
        header["DATE-OBS"] = obs_info.datetime_begin.isot
    # afw reads EXPTIME as the time the pixel values are counts in: for a CASU
    # stack that is one DIT (FLUX_EXPOSURE_TIME), not the total integration.
    flux_time = exposure.metadata.get("FLUX_EXPOSURE_TIME")
    if obs_info.exposure_time is not None:
        total = float(obs_info.exposure_time.to_value("s"))
        header["EXPTIME"] = (float(flux_time) if flux_time is not None else total, "[s] pixel values per")
        header["EXPTOTAL"] = (total, "[s] total integration combined")
    header["DETNAME"] = exposure.detector.name
    sigma = getattr(exposure.psf, "sigma", None)
    if sigma is not None:
        header["PSFSIGMA"] = (float(sigma), "Gaussian PSF sigma (pixels)")
    for n, (key, value) in enumerate(exposure.metadata.native.items(), start=1):
        header[f"HIERARCH LSST IMAGES KEY {n}"] = key
        header[f"HIERARCH LSST IMAGES VALUE {n}"] = value
    return header
