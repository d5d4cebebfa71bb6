"""What the headers of CASU VIRCAM products say, in assembly terms.

This is the only CASU-specific part of the assembly: it turns the merged
primary + extension header of a stack (a flat ``{keyword: value}`` mapping,
HIERARCH keywords without the ``HIERARCH`` prefix) and the camera description
into an `ExposureDescription`.
"""

from __future__ import annotations

__all__ = (
    "casu_noise_parameters",
    "catalog_source_mask",
    "describe_casu_image",
)

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from astro_metadata_translator import MetadataTranslator, ObservationInfo
from astropy.table import Table

from lsst.images import Box

from ..camera import CameraDescription, DetectorDescription
from .assembly import ExposureDescription
from .parameters import NoiseParameters
from .wcs import sky_projection_from_header


def casu_noise_parameters(
    metadata: Mapping[str, Any], detector: DetectorDescription, *, coadds: int, n_combined: int
) -> NoiseParameters:
    r"""Return the noise parameters of a CASU image.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged header.
    detector : `lsst.obs.vista.DetectorDescription`
        Nominal gain (e-/ADU) and read noise (e-) of the detector.
    coadds : `int`
        Reads averaged into one input exposure, :math:`N` (VIRCAM's NDIT,
        WFCAM's NEXP; the translator's ``ext_coadds``).
    n_combined : `int`
        Input exposures the image averages at nominal weight (the
        translator's ``ext_ncombine``).

    Returns
    -------
    noise : `NoiseParameters`
        In gain-normalised ADU per read: gain :math:`g\,N/\mathrm{GAINCOR}`,
        read noise :math:`(\sigma_e/g)\,\mathrm{GAINCOR}/\sqrt{N}` (CASU
        multiplies raw ADU by GAINCOR, 1 if absent, and divides the sum of
        the :math:`N` reads by :math:`N`), SKYLEVEL and SKYNOISE as measured
        by CASU.
    """
    gaincor = float(metadata.get("GAINCOR", 1.0))
    return NoiseParameters.from_header_values(
        gain=detector.gain * coadds / gaincor,
        read_noise=detector.read_noise / detector.gain * gaincor / math.sqrt(coadds),
        n_combined=n_combined,
        sky_level=metadata.get("SKYLEVEL"),
        sky_noise=metadata.get("SKYNOISE"),
    )


def describe_casu_image(
    metadata: Mapping[str, Any],
    bbox: Box,
    *,
    camera: CameraDescription,
    translator: type[MetadataTranslator],
    name: str,
    vega_to_ab: Mapping[str, float],
) -> ExposureDescription:
    r"""Describe a CASU pawprint stack (or single exposure) for assembly.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged primary + extension header.
    bbox : `lsst.images.Box`
        Bounding box of the image (stacks are larger than a detector).
    camera : `lsst.obs.vista.CameraDescription`
        The instrument's camera description (detectors, filters).
    translator : `type` [`astro_metadata_translator.MetadataTranslator`]
        The instrument's header translator.
    name : `str`
        What to call the image in log messages.
    vega_to_ab : `~collections.abc.Mapping` [`str`, `float`]
        :math:`m_\mathrm{AB} - m_\mathrm{Vega}` by band.

    Returns
    -------
    description : `ExposureDescription`
        See Notes.

    Notes
    -----
    - Observation info: the instrument's translator; detector from the
      camera with the image's bounding box and the translator's
      ``ext_subsampling`` (interleaved stacks have pixels of half the
      pitch); band from the camera's filter
      table.  The translator's extension properties, which the exposure's
      (standard) observation info does not keep, are in the metadata:
      ``CASU_PRODUCT`` (``ext_product``: ``exposure``, ``pawprint_stack``
      or ``tile``), ``CASU_NCOMBINE`` (``ext_ncombine``: number of
      exposures or pawprints combined) and ``FLUX_EXPOSURE_TIME``
      (``ext_flux_exposure_time``: the time in seconds that pixel values are
      normalised to, CASU's EXPTIME, one DIT; the observation info's
      ``exposure_time`` is the total integration combined).
    - PSF: Gaussian of FWHM SEEING (CASU's average stellar FWHM, pixels).
    - Saturation: the detector's single-read saturation (raw ADU) times
      GAINCOR.  CASU divides the sum of NDIT reads by NDIT, so a pixel
      saturated in every read sits at the single-read level whatever NDIT;
      a jittered mean keeps that level only where all inputs saturate, so
      partly saturated stars are not all caught.
    - Zero point: CASU magnitudes are
      :math:`m = \mathrm{MAGZPT} - 2.5\log_{10}(F/\mathrm{EXPTIME})
      - \mathrm{EXTINCT}\,(X - 1)` with :math:`F` in image units (EXPTIME is
      the time pixel values are normalised to, the translator's
      ``ext_flux_exposure_time``: VIRCAM's EXPTIME, one DIT; WFCAM's EXP_TIME), EXTINCT the
      extinction coefficient (mag per airmass) and :math:`X` the airmass (the
      mean of ``ESO TEL AIRM START`` and ``END``).  So one image unit has the
      Vega magnitude
      :math:`Z_\mathrm{Vega} = \mathrm{MAGZPT} + 2.5\log_{10}\mathrm{EXPTIME}
      - \mathrm{EXTINCT}\,(X - 1)` and the AB magnitude
      :math:`Z_\mathrm{AB} = Z_\mathrm{Vega} + (m_\mathrm{AB} -
      m_\mathrm{Vega})`, from which the assembly makes the photometric
      scaling.  It is omitted (metadata still records :math:`Z_\mathrm{Vega}`)
      when the band has no entry in ``vega_to_ab``, and entirely when MAGZPT
      is absent.
    """
    obs_info = ObservationInfo(dict(metadata), translator_class=translator)
    assert obs_info.detector_num is not None and obs_info.physical_filter is not None
    detector = camera.make_detector(
        obs_info.detector_num,
        bbox=bbox,
        visit=obs_info.exposure_id,
        subsampling=obs_info.ext_subsampling or 1,
    )
    detector_description = camera.detectors[obs_info.detector_num]
    band = camera.filters[obs_info.physical_filter].band
    if "SEEING" not in metadata:
        raise KeyError(f"{name}: no SEEING card, so no PSF estimate.")
    gaincor = float(metadata.get("GAINCOR", 1.0))
    extra: dict[str, Any] = {
        "CASU_PRODUCT": obs_info.ext_product,
        "CASU_NCOMBINE": obs_info.ext_ncombine,
        "FLUX_EXPOSURE_TIME": obs_info.ext_flux_exposure_time,
        "GAINCOR": gaincor,
        "SEEING": float(metadata["SEEING"]),
    }

    zero_point_ab = None
    if "MAGZPT" in metadata:
        exptime = float(obs_info.ext_flux_exposure_time)
        extinction = float(metadata.get("EXTINCT", 0.0))
        airmass = float(obs_info.boresight_airmass) if obs_info.boresight_airmass is not None else 1.0
        zero_point_vega = float(metadata["MAGZPT"]) + 2.5 * math.log10(exptime) - extinction * (airmass - 1.0)
        extra.update(
            MAGZPT=float(metadata["MAGZPT"]),
            EXPTIME=exptime,
            EXTINCT=extinction,
            AIRMASS=airmass,
            ZERO_POINT_VEGA=zero_point_vega,
        )
        if band in vega_to_ab:
            zero_point_ab = zero_point_vega + vega_to_ab[band]

    return ExposureDescription(
        name=name,
        obs_info=obs_info,
        detector=detector,
        band=band,
        sky_projection=sky_projection_from_header(metadata, detector, bbox),
        psf_fwhm=float(metadata["SEEING"]),
        zero_point_ab=zero_point_ab,
        noise=casu_noise_parameters(
            metadata,
            detector_description,
            coadds=obs_info.ext_coadds or 1,
            n_combined=obs_info.ext_ncombine or 1,
        ),
        saturation_level=detector_description.saturation * gaincor,
        metadata=extra,
    )


def catalog_source_mask(
    catalog: Table, shape: tuple[int, int], *, radius_scale: float = 2.0, min_radius: float = 3.0
) -> np.ndarray:
    r"""Return the pixels covered by the sources of a CASU catalogue.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        CASU (imcore) catalogue of the image, with ``X_coordinate``,
        ``Y_coordinate`` (FITS pixels, 1-based) and ``Areal_1_profile``
        (isophotal area, pixels).
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.
    radius_scale : `float`
        Disc radius in units of the isophotal radius
        :math:`\sqrt{\mathrm{area}/\pi}`.
    min_radius : `float`
        Smallest disc radius (pixels).

    Returns
    -------
    mask : `numpy.ndarray` [`bool`]
        `True` within a disc around each source.
    """
    mask = np.zeros(shape, dtype=bool)
    x = np.asarray(catalog["X_coordinate"], dtype=float) - 1.0
    y = np.asarray(catalog["Y_coordinate"], dtype=float) - 1.0
    area = np.asarray(catalog["Areal_1_profile"], dtype=float)
    radii = np.maximum(radius_scale * np.sqrt(np.clip(area, 0.0, None) / np.pi), min_radius)
    ny, nx = shape
    for xc, yc, radius in zip(x, y, radii, strict=True):
        if not (np.isfinite(xc) and np.isfinite(yc)):
            continue
        y0, y1 = max(int(yc - radius), 0), min(int(yc + radius) + 2, ny)
        x0, x1 = max(int(xc - radius), 0), min(int(xc + radius) + 2, nx)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        mask[y0:y1, x0:x1] |= (yy - yc) ** 2 + (xx - xc) ** 2 <= radius**2
    return mask
