"""The coadd part of the report: each ``deep_coadd`` patch with its image,
depth map, inputs per pixel and PSF FWHM per cell, and its numbers."""

from __future__ import annotations

__all__ = ("CoaddSection", "coadd_rows")

import dataclasses
import logging
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from lsst.daf.butler import Butler, DatasetRef, MissingDatasetTypeError
from lsst.images import Box, Image, Interval
from lsst.images.cells import CellCoadd

from ..psf_shape import fwhm_from_moments, kernel_moments
from .figures import block_extent, block_reduce, display_factor, save_png, zscale
from .statistics import DEPTH_SIGMA, finite_or_none

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CoaddSection:
    """The coadd part of the report."""

    rows: list[dict[str, Any]]
    """One report row per ``deep_coadd`` (see `coadd_rows`)."""

    covered: dict[DatasetRef, Box]
    """The box around each coadd's pixels with inputs
    (``deep_coadd_n_image`` above 0): the rest of its patch is NO_DATA and
    its cells there have no PSF, so a cutout of it is all that needs reading
    (a field can cover a small corner of a patch)."""


def coadd_rows(butler: Butler, output: Path, *, max_coadds: int = 8) -> CoaddSection:
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
    section : `CoaddSection`
        The rows, each with ``skymap``, ``tract``, ``patch``, ``band``,
        ``n_inputs``, ``covered_fraction``, ``psf_fwhm_arcsec`` (median
        over cells), ``depth_5sigma`` (AB mag of a point source at 5 sigma,
        median over cells, from the noise realisation so that it includes
        the pixel covariance), ``partial_cells``, ``clipped_pixels`` and
        ``figure``; and the covered box of each coadd.
    """
    try:
        refs = butler.query_datasets("deep_coadd", explain=False)
    except MissingDatasetTypeError:
        return CoaddSection(rows=[], covered={})
    # When every coadd gets a figure, each is kept from its first read instead of read twice.
    keep = len(refs) <= max_coadds
    entries = []
    covered = {}
    for ref in refs:
        n_image = butler.get("deep_coadd_n_image", ref.dataId)
        box = _covered_box(n_image)
        coadd = butler.get(ref, parameters={"bbox": box})
        row, fwhm_cells = _row(ref.dataId, coadd, n_image.bbox)
        covered[ref] = box
        entries.append((row, fwhm_cells, ref, (coadd, n_image) if keep else None))
    entries.sort(key=lambda entry: (-entry[0]["covered_fraction"], entry[0]["band"], entry[0]["patch"]))
    _LOG.info("Report on %d deep_coadd(s).", len(entries))
    for row, fwhm_cells, ref, kept in entries[:max_coadds]:
        name = f"coadd_{row['tract']}_{row['patch']}_{row['band']}.png"
        if kept is None:
            n_image = butler.get("deep_coadd_n_image", ref.dataId)
            kept = (butler.get(ref, parameters={"bbox": covered[ref]}), n_image)
        coadd, n_image = kept
        _plot(coadd, n_image[coadd.bbox].array, fwhm_cells, row, output / name)
        row["figure"] = name
    return CoaddSection(rows=[row for row, *_ in entries], covered=covered)


def _covered_box(n_image: Image) -> Box:
    """The smallest box holding every pixel with an input (the whole patch
    if none has one)."""
    has_inputs = n_image.array > 0
    rows = np.flatnonzero(has_inputs.any(axis=1))
    columns = np.flatnonzero(has_inputs.any(axis=0))
    if rows.size == 0:
        return n_image.bbox
    y0, x0 = n_image.bbox.y.start, n_image.bbox.x.start
    return Box(
        y=Interval(y0 + rows[0], y0 + rows[-1] + 1),
        x=Interval(x0 + columns[0], x0 + columns[-1] + 1),
    )


def _pixel_scale_arcsec(coadd: CellCoadd, patch: Box) -> float:
    """Pixel scale of a coadd, from the FITS approximation of its projection
    over its whole patch."""
    wcs = coadd.sky_projection.as_fits_wcs(patch, allow_approximation=True)
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)


def _cell_values(coadd: CellCoadd) -> tuple[np.ndarray, np.ndarray]:
    """FWHM (pixels) and 5-sigma depth (AB mag) of each cell of a coadd's
    covered cutout (NaN where missing)."""
    # Imported here: scipy.signal (with scipy.stats) takes half a CPU-second to import, and most
    # reports (and every make-report test but the worked example's) have no coadd.
    import scipy.signal

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
        # A cell reaching past the cutout has pixels without inputs there.
        if not coadd.bbox.contains(box):
            continue
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


def _row(data_id: Any, coadd: CellCoadd, patch: Box) -> tuple[dict[str, Any], np.ndarray]:
    """Return a coadd's report row and its PSF FWHM per cell (arcsec), from
    its covered cutout and the box of its whole patch."""
    scale = _pixel_scale_arcsec(coadd, patch)
    fwhm, depth = _cell_values(coadd)
    n_covered = np.count_nonzero(coadd.mask.get("NO_DATA") == 0)
    metadata = coadd.metadata
    partial = str(metadata.get("PARTIAL_CELLS", ""))
    return {
        "skymap": str(data_id["skymap"]),
        "tract": int(data_id["tract"]),
        "patch": int(data_id["patch"]),
        "band": str(data_id["band"]),
        "n_inputs": int(metadata.get("N_INPUTS", 0)),
        "covered_fraction": n_covered / patch.area,
        "psf_fwhm_arcsec": finite_or_none(np.nanmedian(fwhm) * scale) if np.isfinite(fwhm).any() else None,
        "depth_5sigma": finite_or_none(np.nanmedian(depth)) if np.isfinite(depth).any() else None,
        "partial_cells": len(partial.split(";")) if partial else 0,
        "clipped_pixels": int(metadata.get("N_CLIPPED_PIXELS", 0)),
    }, fwhm * scale


def _plot(coadd: CellCoadd, n_image: np.ndarray, fwhm: np.ndarray, row: dict[str, Any], path: Path) -> None:
    """Coadd image, depth (inverse variance), inputs per pixel and PSF FWHM
    per cell, from the covered cutout of the patch (``n_image`` its inputs
    per pixel), on the tract's pixel and cell coordinates.  The pixel panels
    are binned to about their displayed resolution (inputs per pixel: the
    most of each block), on the colour scales of the unbinned pixels."""
    bbox = coadd.bbox
    factor = display_factor(bbox.shape)
    extent = block_extent(bbox, factor)
    image = coadd.image.array
    variance = coadd.variance.array
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(variance > 0, 1.0 / variance, np.nan)
    figure = Figure(figsize=(20, 5.4))
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.035, right=0.985, bottom=0.1, top=0.88, wspace=0.22)
    axes = figure.subplots(1, 4)
    panels = [
        (block_reduce(image, factor, np.mean), "image (nJy)", zscale(image), "gray"),
        (block_reduce(depth, factor, np.mean), "inverse variance (nJy$^{-2}$)", _range(depth), "viridis"),
        (block_reduce(n_image, factor, np.max), "inputs per pixel", _range(n_image), "magma"),
    ]
    binned = "" if factor == 1 else f", {factor}×{factor} binned"
    for axis, (values, title, panel_norm, cmap) in zip(axes[:3], panels, strict=True):
        shown = axis.imshow(
            values, origin="lower", norm=panel_norm, cmap=cmap, interpolation="nearest", extent=extent
        )
        axis.set_title(title + binned)
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


def _range(values: np.ndarray) -> Normalize:
    """Linear colour scale over the finite values (matplotlib's default)."""
    finite = values[np.isfinite(values)]
    return Normalize(*((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)))
