"""The report's PNG figures, drawn with matplotlib's object interface on
the Agg canvas (no display, no global pyplot state)."""

from __future__ import annotations

__all__ = ("plot_planes", "plot_psf", "plot_unit_gaussian_histogram", "zscale")

from pathlib import Path

import numpy as np
from astropy.visualization import ImageNormalize, ZScaleInterval
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.stats import norm

from lsst.images import VisitImage

from ..isr.masks import planes_set
from .gather import DetectorData
from .psf_residuals import PsfResiduals

_DPI = 90

_MASK_LAYERS = (
    ("DETECTED", "#4c9be8"),
    ("other planes", "#f0a830"),
    ("SATURATED", "#d62728"),
    ("NO_DATA", "#000000"),
)
"""Mask panel colours, later layers drawn over earlier ones; "other planes"
is any plane but these three."""

_HISTOGRAM_RANGE = 6.0
"""Histograms of normalised values span +-this many sigma."""


def plot_planes(data: DetectorData, path: Path) -> None:
    """Draw the image, mask and variance of an exposure with its detections.

    Parameters
    ----------
    data : `DetectorData`
        Exposure and catalogue.
    path : `pathlib.Path`
        PNG to write.

    Notes
    -----
    Point sources (extendedness 0) are drawn as circles, extended sources
    as squares, unclassified ones as crosses; PSF stars are circled again.
    """
    image = data.image
    bbox = image.bbox
    extent = (bbox.x.start - 0.5, bbox.x.stop - 0.5, bbox.y.start - 0.5, bbox.y.stop - 0.5)
    no_data = image.mask.get("NO_DATA") if "NO_DATA" in image.mask.schema.names else None
    pixels = np.array(image.image.array, dtype=np.float64)
    variance = np.array(image.variance.array, dtype=np.float64)
    if no_data is not None:
        pixels[no_data] = np.nan
        variance[no_data] = np.nan
    figure = Figure(figsize=(13.5, 4.6))
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    shown = axes[0].imshow(
        pixels, origin="lower", extent=extent, cmap="gray", norm=zscale(pixels), interpolation="nearest"
    )
    figure.colorbar(shown, ax=axes[0], shrink=0.8, label=str(image.unit))
    _draw_sources(axes[0], data)
    axes[0].set_title("image (background subtracted)")
    colours, legend = _mask_layers(image)
    axes[1].imshow(
        colours,
        origin="lower",
        extent=extent,
        cmap=ListedColormap(["white", *(c for _, c in _MASK_LAYERS)]),
        vmin=-0.5,
        vmax=len(_MASK_LAYERS) + 0.5,
        interpolation="nearest",
    )
    axes[1].legend(handles=legend, loc="upper right", fontsize=7, framealpha=0.8)
    axes[1].set_title("mask")
    shown = axes[2].imshow(
        variance,
        origin="lower",
        extent=extent,
        cmap="viridis",
        norm=_percentiles(variance),
        interpolation="nearest",
    )
    figure.colorbar(shown, ax=axes[2], shrink=0.8, label=f"({image.unit})$^2$")
    axes[2].set_title("variance")
    for axis in axes:
        axis.set_xlabel("x (pixels)")
    axes[0].set_ylabel("y (pixels)")
    figure.suptitle(f"{data.label}  band {data.data_id['band']}", fontsize=11)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")


def plot_psf(residuals: PsfResiduals, title: str, path: Path) -> None:
    """Draw the PSF kernel, the median star stamp and the median residual.

    Parameters
    ----------
    residuals : `PsfResiduals`
        Kernel and stacked stamps.
    title : `str`
        Figure title.
    path : `pathlib.Path`
        PNG to write.
    """
    figure = Figure(figsize=(11.0, 3.8))
    axes = figure.subplots(1, 3)
    kernel = residuals.kernel / residuals.kernel.max()
    shown = axes[0].imshow(kernel, origin="lower", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(shown, ax=axes[0], shrink=0.8)
    axes[0].set_title("PSF model at the centre (peak 1)", fontsize=9)
    if residuals.data is None:
        for axis in axes[1:]:
            axis.text(0.5, 0.5, "no usable star stamp", ha="center", va="center", transform=axis.transAxes)
            axis.set_axis_off()
    else:
        shown = axes[1].imshow(
            residuals.data, origin="lower", cmap="magma", vmin=0, vmax=1, interpolation="nearest"
        )
        figure.colorbar(shown, ax=axes[1], shrink=0.8)
        axes[1].set_title(f"median of {residuals.n_stars} star stamps", fontsize=9)
        limit = max(0.02, float(np.max(np.abs(residuals.residual))))
        shown = axes[2].imshow(
            residuals.residual,
            origin="lower",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
        )
        figure.colorbar(shown, ax=axes[2], shrink=0.8)
        axes[2].set_title("median (data - model) / peak", fontsize=9)
    figure.suptitle(f"{title}  ({residuals.selection})", fontsize=10)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")


def plot_unit_gaussian_histogram(
    values: np.ndarray, *, title: str, xlabel: str, lines: list[str], path: Path
) -> None:
    """Draw a histogram of normalised values with N(0, 1) overlaid.

    Parameters
    ----------
    values : `numpy.ndarray`
        Values expected to follow N(0, 1).
    title, xlabel : `str`
        Title and x axis label.
    lines : `list` [`str`]
        Text printed in the plot (counts, robust std, ...).
    path : `pathlib.Path`
        PNG to write.
    """
    figure = Figure(figsize=(6.4, 4.4))
    axis = figure.subplots()
    values = values[np.isfinite(values)]
    bins = np.linspace(-_HISTOGRAM_RANGE, _HISTOGRAM_RANGE, 61 if values.size > 500 else 25)
    if values.size:
        axis.hist(
            np.clip(values, -_HISTOGRAM_RANGE, _HISTOGRAM_RANGE),
            bins=bins,
            density=True,
            histtype="stepfilled",
            alpha=0.6,
            label="measured (clipped to the range)",
        )
    grid = np.linspace(-_HISTOGRAM_RANGE, _HISTOGRAM_RANGE, 400)
    axis.plot(grid, norm.pdf(grid), color="black", lw=1.2, label="N(0, 1)")
    axis.set_yscale("log")
    axis.set_ylim(1e-5 if values.size > 10_000 else 1e-3, 1.0)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("density")
    axis.set_title(title, fontsize=10)
    axis.text(
        0.02, 0.97, "\n".join(lines), transform=axis.transAxes, va="top", fontsize=8, family="monospace"
    )
    axis.legend(loc="upper right", fontsize=8)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")


def _draw_sources(axis: Axes, data: DetectorData) -> None:
    stars = data.stars
    if len(stars) == 0:
        return
    x = np.asarray(stars["x"], dtype=float)
    y = np.asarray(stars["y"], dtype=float)
    extendedness = np.asarray(stars["extendedness"], dtype=float)
    size = 6.0 * data.image.summary_stats.psfSigma if data.image.summary_stats is not None else 10.0
    marker_size = max(20.0, 4.0 * size)
    point = extendedness == 0
    extended = extendedness == 1
    unknown = ~(point | extended)
    axis.scatter(
        x[point],
        y[point],
        s=marker_size,
        facecolors="none",
        edgecolors="#2ca02c",
        lw=0.8,
        label=f"point ({int(point.sum())})",
    )
    axis.scatter(
        x[extended],
        y[extended],
        s=marker_size,
        marker="s",
        facecolors="none",
        edgecolors="#ff7f0e",
        lw=0.8,
        label=f"extended ({int(extended.sum())})",
    )
    if unknown.any():
        axis.scatter(
            x[unknown],
            y[unknown],
            s=marker_size / 2,
            marker="x",
            color="#9467bd",
            lw=0.8,
            label=f"unclassified ({int(unknown.sum())})",
        )
    if "calib_psf_used" in stars.colnames:
        used = np.asarray(stars["calib_psf_used"], dtype=bool)
        if used.any():
            axis.scatter(
                x[used],
                y[used],
                s=2.5 * marker_size,
                facecolors="none",
                edgecolors="#d62728",
                lw=0.8,
                label=f"PSF stars ({int(used.sum())})",
            )
    axis.legend(loc="upper right", fontsize=7, framealpha=0.8)


def _mask_layers(image: VisitImage) -> tuple[np.ndarray, list[Patch]]:
    """Return an index image of the mask's layers (0 none) and its legend."""
    mask = image.mask
    names = set(mask.schema.names)
    layers = np.zeros(mask.array.shape[:2], dtype=np.int16)
    named = {name for name, _ in _MASK_LAYERS}
    legend = []
    for index, (name, colour) in enumerate(_MASK_LAYERS, start=1):
        if name == "other planes":
            others = [plane for plane in names if plane not in named]
            pixels = planes_set(mask.array, mask.schema, others) if others else None
        else:
            pixels = mask.get(name) if name in names else None
        if pixels is None:
            continue
        layers[pixels] = index
        legend.append(Patch(color=colour, label=f"{name} {100.0 * pixels.mean():.1f}%"))
    return layers, legend


def zscale(pixels: np.ndarray) -> ImageNormalize:
    """Return the IRAF zscale normalisation of an image's finite pixels."""
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return ImageNormalize(vmin=0.0, vmax=1.0)
    return ImageNormalize(finite, interval=ZScaleInterval())


def _percentiles(values: np.ndarray) -> ImageNormalize:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ImageNormalize(vmin=0.0, vmax=1.0)
    low, high = np.percentile(finite, [1.0, 99.0])
    return ImageNormalize(vmin=low, vmax=high if high > low else low + 1.0)
