"""The PSF model against the stars it describes: data minus the model
scaled to each star's flux, stacked."""

from __future__ import annotations

__all__ = ("PsfResiduals", "psf_residuals")

import dataclasses

import numpy as np
from astropy.table import Table

from lsst.images import VisitImage

from .statistics import clean_point_sources


@dataclasses.dataclass
class PsfResiduals:
    """Median stamps of the stars of one exposure and of their residuals."""

    kernel: np.ndarray
    """PSF kernel image at the centre of the exposure."""

    selection: str
    """Which stars were stacked: ``calib_psf_used``, ``calib_psf_candidate``
    or ``point sources`` (clean, extendedness 0) when the model used none."""

    n_stars: int
    """Stars stacked (stamps entirely on unmasked, finite pixels)."""

    data: np.ndarray | None
    """Median of the star stamps, each divided by its fitted model amplitude
    and the model's peak (so the model's peak is 1); `None` without stars."""

    residual: np.ndarray | None
    """Median of (data - amplitude * model) / (amplitude * model peak), in
    units of the model's peak; `None` without stars."""

    @property
    def max_abs_residual(self) -> float | None:
        """Largest absolute value of the median residual stamp (fraction of the peak)."""
        return None if self.residual is None else float(np.max(np.abs(self.residual)))


def psf_residuals(image: VisitImage, stars: Table) -> PsfResiduals:
    """Stack the PSF stars of an exposure and their residuals from the model.

    Parameters
    ----------
    image : `lsst.images.VisitImage`
        ``preliminary_visit_image``.
    stars : `astropy.table.Table`
        Its ``single_visit_star`` catalogue.

    Returns
    -------
    residuals : `PsfResiduals`
        The model at each star comes from ``psf.compute_stellar_image`` at
        the star's centroid; its amplitude is the inverse-variance weighted
        least-squares fit to the stamp.
    """
    psf = image.psf
    bbox = image.bbox
    x_centre = 0.5 * (bbox.x.start + bbox.x.stop - 1)
    y_centre = 0.5 * (bbox.y.start + bbox.y.stop - 1)
    kernel = np.asarray(psf.compute_kernel_image(x=x_centre, y=y_centre).array, dtype=np.float64)
    selection, chosen = _choose_stars(stars)
    pixels = np.asarray(image.image.array, dtype=np.float64)
    variance = np.asarray(image.variance.array, dtype=np.float64)
    schema = image.mask.schema
    flagged = schema.bitmask(*(name for name in schema.names if name != "DETECTED"))
    good = ~np.any(image.mask.array & flagged, axis=-1)
    x0, y0 = bbox.x.start, bbox.y.start
    data_stamps, residual_stamps = [], []
    for x, y in zip(
        np.asarray(stars["x"], float)[chosen], np.asarray(stars["y"], float)[chosen], strict=True
    ):
        model_image = psf.compute_stellar_image(x=x, y=y)
        model = np.asarray(model_image.array, dtype=np.float64)
        stamp_box = model_image.bbox
        rows = slice(stamp_box.y.start - y0, stamp_box.y.stop - y0)
        columns = slice(stamp_box.x.start - x0, stamp_box.x.stop - x0)
        if (
            rows.start < 0
            or columns.start < 0
            or rows.stop > pixels.shape[0]
            or columns.stop > pixels.shape[1]
        ):
            continue
        data = pixels[rows, columns]
        weight = 1.0 / variance[rows, columns]
        if not (good[rows, columns].all() and np.isfinite(data).all()):
            continue
        amplitude = np.sum(weight * data * model) / np.sum(weight * model * model)
        if not amplitude > 0:
            continue
        peak = amplitude * model.max()
        data_stamps.append(data / peak)
        residual_stamps.append((data - amplitude * model) / peak)
    if not data_stamps or len({stamp.shape for stamp in data_stamps}) != 1:
        return PsfResiduals(kernel, selection, 0, None, None)
    return PsfResiduals(
        kernel,
        selection,
        len(data_stamps),
        np.median(np.stack(data_stamps), axis=0),
        np.median(np.stack(residual_stamps), axis=0),
    )


def _choose_stars(stars: Table) -> tuple[str, np.ndarray]:
    """Return the name and mask of the stars to stack: those the PSF model
    used, else its candidates, else the clean point sources."""
    for column in ("calib_psf_used", "calib_psf_candidate"):
        if len(stars) and column in stars.colnames and np.any(stars[column]):
            return column, np.asarray(stars[column], dtype=bool)
    return "point sources", clean_point_sources(stars)
