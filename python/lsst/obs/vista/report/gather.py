"""What the report reads from the butler: the calibrated exposures and
catalogues of ``calibrateImage``, and one table row per visit and detector."""

from __future__ import annotations

__all__ = ("DetectorData", "find_detectors", "load_detector", "table_row")

import dataclasses
import logging
from typing import Any

import numpy as np
from astropy.table import Table

from lsst.daf.butler import Butler, DataCoordinate, MissingDatasetTypeError
from lsst.images import VisitImage

from ..isr.handoff import IsrHandoff
from ..psf_shape import fwhm_from_moments, kernel_moments
from .statistics import finite_or_none as _number
from .statistics import point_source_depth

_LOG = logging.getLogger(__name__)

_IMAGE = "preliminary_visit_image"
_STARS = "single_visit_star"

_HEADER_FWHM_KEYS = ("FWHM", "SEEING")
"""Metadata cards holding the header's PSF FWHM in pixels: the DECam CP's
``FWHM`` and CASU's ``SEEING``."""


@dataclasses.dataclass
class DetectorData:
    """The outputs of ``calibrateImage`` for one visit and detector."""

    data_id: dict[str, Any]
    """Instrument, visit, detector and band."""

    image: VisitImage
    """``preliminary_visit_image``."""

    stars: Table
    """``single_visit_star``."""

    run: str
    """RUN collection of the ``preliminary_visit_image`` (where the task's
    config is)."""

    @property
    def label(self) -> str:
        """Short name for captions and file names."""
        return f"{self.data_id['instrument']}-{self.data_id['visit']}-{self.data_id['detector']:03d}"


def find_detectors(butler: Butler, where: str = "") -> list[DataCoordinate]:
    """Return the data IDs with both a ``preliminary_visit_image`` and a
    ``single_visit_star``, sorted.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with default collections set.
    where : `str`, optional
        Data ID expression restricting the search.

    Returns
    -------
    data_ids : `list` [`lsst.daf.butler.DataCoordinate`]
        Instrument, visit and detector of each pair of datasets, in data ID
        order; empty if the dataset types are not registered.
    """
    found = []
    for dataset_type in (_IMAGE, _STARS):
        try:
            refs = butler.query_datasets(dataset_type, where=where, explain=False)
        except MissingDatasetTypeError:
            return []
        found.append({ref.dataId for ref in refs})
    images, stars = found
    if images - stars:
        _LOG.warning("%d %s dataset(s) have no %s; left out.", len(images - stars), _IMAGE, _STARS)
    return sorted(images & stars, key=lambda data_id: tuple(data_id.required.values()))


def load_detector(butler: Butler, data_id: DataCoordinate) -> DetectorData:
    """Read the calibrated exposure and catalogue of one visit and detector.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with default collections set.
    data_id : `lsst.daf.butler.DataCoordinate`
        Instrument, visit and detector.

    Returns
    -------
    data : `DetectorData`
    """
    ref = butler.find_dataset(_IMAGE, data_id)
    image = butler.get(ref)
    stars = butler.get(_STARS, dataId=data_id)
    required = dict(data_id.required)
    required["band"] = image.band
    return DetectorData(data_id=required, image=image, stars=stars, run=ref.run)


def table_row(data: DetectorData) -> dict[str, Any]:
    """Return the report table's row for one visit and detector.

    Parameters
    ----------
    data : `DetectorData`
        The outputs of ``calibrateImage``.

    Returns
    -------
    row : `dict` [`str`, `typing.Any`]
        Data ID (``instrument``, ``visit``, ``detector``, ``band``), then
        ``noise_ratio`` (isr's background noise over the predicted sigma),
        ``width`` and ``height`` (pixels), ``n_sources``,
        ``n_point_sources`` (extendedness 0), ``psf_model`` and
        ``n_psf_stars``, ``pixel_scale`` (arcsec per pixel at the centre),
        ``psf_fwhm`` and ``psf_fwhm_arcsec`` (our model's second-moment FWHM
        at the centre) and ``header_fwhm`` and ``header_fwhm_arcsec``
        (``FWHM`` or ``SEEING`` card), ``zero_point`` (AB magnitude of one
        image unit applied), ``zero_point_source`` (header, fit, or none
        when no zero point is known), ``zero_point_fit``,
        ``zero_point_offset`` (fitted minus header) and
        ``zero_point_scatter`` (mag) with ``n_photometry_stars``,
        ``astrometry_model``, ``n_astrometry_matches``,
        ``astrometric_offset_mas`` and ``astrometric_rms_mas``,
        ``sky_level`` and ``sky_noise`` (image units, ``unit``) and
        ``depth_5sigma`` (`point_source_depth` of the PSF model at the
        centre on ``sky_noise``, with the correlated-noise factor
        ``NOISE_CORR_PSF``, AB mag), ``corners`` ([RA, Dec] degrees of
        the four corners, for the visit maps) and ``saturated_fraction``
        (of the pixels, SATURATED).  Values not measured are
        `None`.
    """
    image = data.image
    metadata = image.metadata
    stats = image.summary_stats
    bbox = image.bbox
    kernel = image.psf.compute_kernel_image(x=bbox.x.center, y=bbox.y.center).array
    ixx, iyy, _ = kernel_moments(kernel)
    scale = None if stats is None else _number(stats.pixelScale)
    header_fwhm = next((metadata[key] for key in _HEADER_FWHM_KEYS if metadata.get(key) is not None), None)
    extendedness = np.asarray(data.stars["extendedness"], dtype=float) if len(data.stars) else np.zeros(0)
    zero_point = metadata.get("PHOTOCAL_ZP")
    if zero_point is None and stats is not None:
        zero_point = stats.zeroPoint
    offset = metadata.get("ASTROM_OFFSET_MAS")
    rms = metadata.get("ASTROM_RMS_MAS")
    fwhm = _number(fwhm_from_moments(ixx, iyy))
    header_fwhm = _number(header_fwhm)
    sky_noise = None if stats is None else _number(stats.skyNoise)
    return {
        **data.data_id,
        "width": bbox.x.size,
        "height": bbox.y.size,
        "noise_ratio": _number(IsrHandoff.from_metadata(metadata).noise_ratio),
        "n_sources": len(data.stars),
        "n_point_sources": int(np.sum(extendedness == 0)),
        "psf_model": metadata.get("PSF_MODEL"),
        "n_psf_stars": _integer(metadata.get("PSF_NSTARS")),
        "pixel_scale": scale,
        "psf_fwhm": fwhm,
        "psf_fwhm_arcsec": _arcsec(fwhm, scale),
        "header_fwhm": header_fwhm,
        "header_fwhm_arcsec": _arcsec(header_fwhm, scale),
        "zero_point": _number(zero_point),
        "zero_point_source": metadata.get("PHOTOCAL_SOURCE"),
        "zero_point_fit": _number(metadata.get("PHOTOCAL_ZP_FIT")),
        "zero_point_offset": _number(metadata.get("PHOTOCAL_OFFSET")),
        "zero_point_scatter": _number(metadata.get("PHOTOCAL_SCATTER")),
        "n_photometry_stars": _integer(metadata.get("PHOTOCAL_NSTARS")),
        "astrometry_model": metadata.get("ASTROM_MODEL"),
        "n_astrometry_matches": _integer(metadata.get("ASTROM_NMATCH")),
        "astrometric_offset_mas": _number(offset),
        "astrometric_rms_mas": _number(rms),
        "sky_level": _number(None if stats is None else stats.skyBg),
        "sky_noise": sky_noise,
        "unit": str(image.unit),
        "depth_5sigma": point_source_depth(
            kernel,
            sky_noise,
            _number(zero_point),
            correlation_factor=float(metadata.get("NOISE_CORR_PSF", 1.0)),
        ),
        "saturated_fraction": float(image.mask.get("SATURATED").mean())
        if "SATURATED" in image.mask.schema.names
        else None,
        "corners": None
        if stats is None
        else [[float(ra), float(dec)] for ra, dec in zip(stats.raCorners, stats.decCorners, strict=True)],
    }


def _arcsec(pixels: float | None, scale: float | None) -> float | None:
    return None if pixels is None or scale is None else pixels * scale


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)
