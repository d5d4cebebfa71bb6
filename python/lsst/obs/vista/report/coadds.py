"""The coadd part of the report: each ``deep_coadd`` patch with its image,
depth map, inputs per pixel and PSF FWHM per cell, and its numbers."""

from __future__ import annotations

__all__ = ("coadd_rows",)

import logging
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import scipy.signal
from matplotlib.figure import Figure

from lsst.daf.butler import Butler, MissingDatasetTypeError
from lsst.images.cells import CellCoadd

from ..psf_shape import fwhm_from_moments, kernel_moments
from .figures import save_png, zscale
from .statistics import DEPTH_SIGMA, finite_or_none

_LOG = logging.getLogger(__name__)


def coadd_rows(butler: Butler, output: Path, *, max_coadds: int = 8) -> list[dict[str, Any]]:
    """Return one report row per ``deep_coadd`` (patch and band), drawing
    the figures of the first ``max_coadds`` into ``output``.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with the report's collections.
    output : `pathlib.Path`
        Directory for the figures.
    max_coadds : `int`, optional
        Coadds given figures (those with the most covered pixels first).

    Returns
    -------
    rows : `list` [`dict`]
        ``skymap``, ``tract``, ``patch``, ``band``, ``n_inputs``,
        ``covered_fraction``, ``psf_fwhm_arcsec`` (median over cells),
        ``depth_5sigma`` (AB mag of a point source at 5 sigma, median over
        cells, from the noise realisation so that it includes the pixel
        covariance), ``partial_cells``, ``clipped_pixels`` and ``figure``.
    """
    try:
        refs = butler.query_datasets("deep_coadd", explain=False)
    except MissingDatasetTypeError:
        return []
    # When every coadd gets a figure, each is kept from its first read instead of read twice.
    keep = len(refs) <= max_coadds
    entries = []
    for ref in refs:
        coadd = butler.get(ref)
        row, fwhm_cells = _row(ref.dataId, coadd)
        entries.append((row, fwhm_cells, ref, coadd if keep else None))
    entries.sort(key=lambda entry: (-entry[0]["covered_fraction"], entry[0]["band"], entry[0]["patch"]))
    _LOG.info("Report on %d deep_coadd(s).", len(entries))
    for row, fwhm_cells, ref, coadd in entries[:max_coadds]:
        name = f"coadd_{row['tract']}_{row['patch']}_{row['band']}.png"
        n_image = butler.get("deep_coadd_n_image", ref.dataId)
        _plot(coadd if coadd is not None else butler.get(ref), n_image.array, fwhm_cells, row, output / name)
        row["figure"] = name
    return [row for row, *_ in entries]


def _pixel_scale_arcsec(coadd: CellCoadd) -> float:
    wcs = coadd.sky_projection.as_fits_wcs(coadd.bbox, allow_approximation=True)
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)


def _cell_values(coadd: CellCoadd) -> tuple[np.ndarray, np.ndarray]:
    """FWHM (pixels) and 5-sigma depth (AB mag) of each cell (NaN where missing)."""
    grid = coadd.grid
    fwhm = np.full((grid.grid_size.i, grid.grid_size.j), np.nan)
    depth = np.full_like(fwhm, np.nan)
    noise = coadd.noise_realizations[0].array if coadd.noise_realizations else None
    good = coadd.mask.get("NO_DATA") == 0
    for cell in coadd.psf.bounds.cell_indices():
        if cell in coadd.psf.bounds.missing:
            continue
        kernel = coadd.psf[cell].array
        ixx, iyy, _ = kernel_moments(kernel)
        fwhm[cell.i, cell.j] = fwhm_from_moments(ixx, iyy)
        if noise is None:
            continue
        box = grid.bbox_of(cell)
        sl = box.slice_within(coadd.bbox)
        if not good[sl].all():
            continue
        # PSF-weighted flux of the noise realisation at every pixel: its
        # scatter is the PSF-flux error, covariance included.
        filtered = scipy.signal.fftconvolve(noise[sl], kernel[::-1, ::-1], mode="valid")
        sigma = float(np.std(filtered)) / float(np.sum(kernel**2))
        if sigma > 0:
            depth[cell.i, cell.j] = (DEPTH_SIGMA * sigma * u.nJy).to_value(u.ABmag)
    return fwhm, depth


def _row(data_id: Any, coadd: CellCoadd) -> tuple[dict[str, Any], np.ndarray]:
    """Return a coadd's report row and its PSF FWHM per cell (arcsec)."""
    scale = _pixel_scale_arcsec(coadd)
    fwhm, depth = _cell_values(coadd)
    covered = coadd.mask.get("NO_DATA") == 0
    metadata = coadd.metadata
    partial = str(metadata.get("PARTIAL_CELLS", ""))
    return {
        "skymap": str(data_id["skymap"]),
        "tract": int(data_id["tract"]),
        "patch": int(data_id["patch"]),
        "band": str(data_id["band"]),
        "n_inputs": int(metadata.get("N_INPUTS", 0)),
        "covered_fraction": float(covered.mean()),
        "psf_fwhm_arcsec": finite_or_none(np.nanmedian(fwhm) * scale) if np.isfinite(fwhm).any() else None,
        "depth_5sigma": finite_or_none(np.nanmedian(depth)) if np.isfinite(depth).any() else None,
        "partial_cells": len(partial.split(";")) if partial else 0,
        "clipped_pixels": int(metadata.get("N_CLIPPED_PIXELS", 0)),
    }, fwhm * scale


def _plot(coadd: CellCoadd, n_image: np.ndarray, fwhm: np.ndarray, row: dict[str, Any], path: Path) -> None:
    """Coadd image, depth (inverse variance), inputs per pixel and PSF FWHM
    per cell, each cut to the covered part of the patch (a field can cover
    a small corner of it), on the tract's pixel and cell coordinates."""
    rows, columns = np.nonzero(n_image > 0)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    extent = (
        coadd.bbox.x.start + x0 - 0.5,
        coadd.bbox.x.start + x1 - 0.5,
        coadd.bbox.y.start + y0 - 0.5,
        coadd.bbox.y.start + y1 - 0.5,
    )
    image = coadd.image.array[y0:y1, x0:x1]
    variance = coadd.variance.array[y0:y1, x0:x1]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(variance > 0, 1.0 / variance, np.nan)
    figure = Figure(figsize=(20, 5.4), layout="constrained")
    axes = figure.subplots(1, 4)
    panels = [
        (image, "image (nJy)", zscale(image), "gray"),
        (depth, "inverse variance (nJy$^{-2}$)", None, "viridis"),
        (n_image[y0:y1, x0:x1], "inputs per pixel", None, "magma"),
    ]
    for axis, (values, title, panel_norm, cmap) in zip(axes[:3], panels, strict=True):
        shown = axis.imshow(
            values, origin="lower", norm=panel_norm, cmap=cmap, interpolation="nearest", extent=extent
        )
        axis.set_title(title)
        axis.set_xlabel("tract x (pixels)")
        figure.colorbar(shown, ax=axis, shrink=0.8)
    cell_rows, cell_columns = np.nonzero(np.isfinite(fwhm))
    i0, i1, j0, j1 = cell_rows.min(), cell_rows.max() + 1, cell_columns.min(), cell_columns.max() + 1
    shown = axes[3].imshow(
        fwhm[i0:i1, j0:j1],
        origin="lower",
        cmap="plasma",
        interpolation="nearest",
        extent=(j0 - 0.5, j1 - 0.5, i0 - 0.5, i1 - 0.5),
    )
    axes[3].set_title("PSF FWHM per cell (arcsec)")
    axes[3].set_xlabel("cell j")
    axes[3].set_ylabel("cell i")
    figure.colorbar(shown, ax=axes[3], shrink=0.8)
    figure.suptitle(
        f"deep_coadd {row['skymap']} tract {row['tract']} patch {row['patch']} band {row['band']}"
    )
    save_png(figure, path, dpi=80)
