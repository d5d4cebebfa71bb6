"""What the headers of DECam Community Pipeline instcal products say, in
assembly terms, and how their data-quality masks decode.

This is the only CP-specific part of the assembly: it turns the merged
primary + extension header of an ``ooi`` image and the camera description
into an `ExposureDescription`, and decodes ``ood`` masks by the convention
their PLVER implies (`lsst.obs.vista.cp_quality`, from
``policy/decam/dq_mask.yaml``).
"""

from __future__ import annotations

__all__ = (
    "CpQualityMaskTask",
    "cp_noise_parameters",
    "cp_pixel_origin",
    "describe_cp_image",
)

import math
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from astro_metadata_translator import MetadataTranslator, ObservationInfo

from lsst.images import Box, MaskPlane

from ..camera import CameraDescription, DetectorDescription
from ..cp_quality import CpQualityPolicy
from .assembly import ExposureDescription
from .masks import QualityMaskTask
from .parameters import NoiseParameters
from .wcs import sky_projection_from_header


def cp_pixel_origin(metadata: Mapping[str, Any]) -> tuple[int, int]:
    """Return the position of a CP image's first pixel on its CCD.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged header.

    Returns
    -------
    x0, y0 : `int`
        ``(-LTV1, -LTV2)``: IRAF's physical = logical - LTV, so the trimmed
        CP image (LTV = -1) starts at pixel 1 of the CCD; (0, 0) without LTV.
    """
    return round(-float(metadata.get("LTV1", 0.0))), round(-float(metadata.get("LTV2", 0.0)))


def _mean_of_amplifiers(metadata: Mapping[str, Any], prefix: str) -> float | None:
    values = [float(metadata[key]) for key in (f"{prefix}A", f"{prefix}B") if key in metadata]
    return sum(values) / len(values) if values else None


def cp_noise_parameters(metadata: Mapping[str, Any], detector: DetectorDescription) -> NoiseParameters:
    """Return the noise parameters of a CP instcal image.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged header.
    detector : `lsst.obs.vista.DetectorDescription`
        Nominal gain (e-/ADU) and read noise (e-) of the CCD, for headers
        without GAINA/B or RDNOISEA/B.

    Returns
    -------
    noise : `NoiseParameters`
        In ADU: gain the mean of GAINA and GAINB, read noise the mean of
        RDNOISEA and RDNOISEB (electrons) over the gain, one exposure, sky
        level AVSKY (the CP does not subtract it from ``ooi`` images; SKYSUB
        in the primary header is the exposure-wide value) and sky noise AVSIG
        or, in older products, SKYSIGMA.  Only the header-only variance
        models use these: the default model is the weight map.
    """
    gain = _mean_of_amplifiers(metadata, "GAIN") or detector.gain
    read_noise = _mean_of_amplifiers(metadata, "RDNOISE") or detector.read_noise
    return NoiseParameters.from_header_values(
        gain=gain,
        read_noise=read_noise / gain,
        n_combined=1,
        sky_level=metadata.get("AVSKY", metadata.get("SKYBRITE")),
        sky_noise=metadata.get("AVSIG", metadata.get("SKYSIGMA")),
    )


def describe_cp_image(
    metadata: Mapping[str, Any],
    bbox: Box,
    *,
    camera: CameraDescription,
    translator: type[MetadataTranslator],
    name: str,
) -> ExposureDescription:
    r"""Describe a CP instcal image of one CCD for assembly.

    Parameters
    ----------
    metadata : `~collections.abc.Mapping`
        Merged primary + extension header of the ``ooi`` HDU.
    bbox : `lsst.images.Box`
        Bounding box of the image on its CCD (see `cp_pixel_origin`).
    camera : `lsst.obs.vista.CameraDescription`
        DECam camera description (CCDs, filters).
    translator : `type` [`astro_metadata_translator.MetadataTranslator`]
        The instrument's header translator (astro_metadata_translator's own
        DECam translator, which reads CP headers as they are).
    name : `str`
        What to call the image in log messages.

    Returns
    -------
    description : `ExposureDescription`
        See Notes.

    Notes
    -----
    - Observation info: from ``translator``; the CCD is CCDNUM.
    - WCS: the TPV solution of the extension header (PV1_*, PV2_*), with
      FITS pixel (1, 1) at the first pixel of ``bbox``.
    - PSF: Gaussian of FWHM the FWHM card (the CP's median stellar FWHM,
      pixels).
    - Saturation: the lower of SATURATA and SATURATB (ADU): a cutout does
      not say which amplifier its pixels were read through.
    - Zero point: MAGZERO is the magnitude of one ADU in the whole exposure;
      where only MAGZPT (for one ADU per second) is given,
      :math:`\mathrm{MAGZERO} = \mathrm{MAGZPT} + 2.5\log_{10}
      \mathrm{EXPTIME}`.  CP zero points are calibrated on AB catalogues
      (PS1, DES), so the photometric scaling is
      :math:`10^{-0.4 (\mathrm{MAGZERO} - 31.4)}` nJy per ADU; the extinction
      at the exposure's airmass is included in the calibration.  Many
      Legacy Surveys products carry neither card: then there is no
      photometric scaling.
    """
    obs_info = ObservationInfo(dict(metadata), filename=name, translator_class=translator)
    ccd = int(metadata["CCDNUM"])
    if ccd not in camera.detectors:
        raise KeyError(f"{name}: CCDNUM {ccd} is not a DECam science CCD.")
    detector = camera.make_detector(ccd, bbox=bbox, visit=obs_info.exposure_id)
    detector_description = camera.detectors[ccd]
    assert obs_info.physical_filter is not None
    band = camera.filters[obs_info.physical_filter].band
    if "FWHM" not in metadata:
        raise KeyError(f"{name}: no FWHM card, so no PSF estimate.")
    extra: dict[str, Any] = {"FWHM": float(metadata["FWHM"]), "PLVER": str(metadata.get("PLVER", "")).strip()}

    zero_point = None
    exptime = float(metadata["EXPTIME"])
    if "MAGZERO" in metadata:
        zero_point = float(metadata["MAGZERO"])
    elif "MAGZPT" in metadata and exptime > 0:
        zero_point = float(metadata["MAGZPT"]) + 2.5 * math.log10(exptime)
    if zero_point is not None:
        extra["EXPTIME"] = exptime

    saturations = [float(metadata[key]) for key in ("SATURATA", "SATURATB", "SATURATE") if key in metadata]
    return ExposureDescription(
        name=name,
        obs_info=obs_info,
        detector=detector,
        band=band,
        sky_projection=sky_projection_from_header(metadata, detector, bbox),
        psf_fwhm=float(metadata["FWHM"]),
        zero_point_ab=zero_point,
        noise=cp_noise_parameters(metadata, detector_description),
        saturation_level=min(saturations) if saturations else detector_description.saturation,
        metadata=extra,
    )


class CpQualityMaskTask(QualityMaskTask):
    """Decode a DECam CP data-quality (``ood``) mask into mask planes.

    The convention (integer codes from CP 3.5.0 on, bit flags before; which
    code means what; cosmic-ray codes ignored before CP 4.8.0; the ring of
    code 1 around saturated pixels) is ``policy/decam/dq_mask.yaml``,
    chosen by the mask's PLVER card (`lsst.obs.vista.cp_quality`).  The
    bit-flag settings of `QualityMaskTask` are not used.
    """

    _DefaultName: ClassVar[str] = "qualityMask"

    @cached_property
    def policy(self) -> CpQualityPolicy:
        """The decoding rules."""
        return CpQualityPolicy.read()

    @property
    def planes(self) -> list[MaskPlane]:
        # Docstring inherited.
        return [MaskPlane(name, description) for name, description in self.policy.extra_planes.items()]

    def decode(self, quality: np.ndarray, metadata: Mapping[str, Any]) -> Mapping[str, np.ndarray]:
        # Docstring inherited.
        plver = metadata.get("PLVER")
        if plver is None:
            raise KeyError("The CP quality mask has no PLVER card, so its convention is unknown.")
        return self.policy.decode(quality, str(plver))
