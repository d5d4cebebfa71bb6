"""The report's PNG figures, drawn with matplotlib's object interface on
the Agg canvas (no display, no global pyplot state)."""

from __future__ import annotations

__all__ = (
    "block_extent",
    "block_reduce",
    "display_factor",
    "plot_planes",
    "plot_psf",
    "plot_unit_gaussian_histogram",
    "save_png",
    "write_full_resolution",
    "zscale",
)

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
from astropy.visualization import ImageNormalize, ZScaleInterval
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lsst.images import Box, VisitImage

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

_DISPLAY_PIXELS = 600
"""Image panels are block-averaged to at most this many pixels a side: about
twice what a panel of the figure shows (its full resolution is a separate
PNG, `write_full_resolution`)."""

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
    factor = display_factor(bbox.shape)
    extent = block_extent(bbox, factor)
    no_data = image.mask.get("NO_DATA") if "NO_DATA" in image.mask.schema.names else None
    pixels = np.array(image.image.array, dtype=np.float32)
    variance = np.array(image.variance.array, dtype=np.float32)
    if no_data is not None:
        pixels[no_data] = np.nan
        variance[no_data] = np.nan
    pixels = block_reduce(pixels, factor, np.mean)
    variance = block_reduce(variance, factor, np.mean)
    figure = Figure(figsize=(13.5, 4.6))
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.11, top=0.88, wspace=0.12)
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    shown = axes[0].imshow(
        pixels, origin="lower", extent=extent, cmap="gray", norm=zscale(pixels), interpolation="nearest"
    )
    figure.colorbar(shown, ax=axes[0], shrink=0.8, label=str(image.unit))
    _draw_sources(axes[0], data)
    title = "image (background subtracted)"
    axes[0].set_title(title if factor == 1 else f"{title}, {factor}×{factor} binned", fontsize=10)
    colours, legend = _mask_layers(image)
    axes[1].imshow(
        # The highest layer of each block, so that a masked pixel stays visible.
        block_reduce(colours, factor, np.max),
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
    save_png(figure, path)


def save_png(figure: Figure, path: Path, dpi: float = _DPI) -> None:
    """Write a figure as PNG, compressed for speed rather than size.

    Parameters
    ----------
    figure : `matplotlib.figure.Figure`
        The figure, laid out (no tight bounding box, which would draw it
        twice).
    path : `pathlib.Path`
        PNG to write.
    dpi : `float`, optional
        Resolution.
    """
    # zlib's fastest level: PNG encoding was the largest cost of a figure.
    figure.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 1})


def write_full_resolution(image: VisitImage, path: Path) -> None:
    """Write the image at its own resolution, one PNG pixel per image pixel.

    Parameters
    ----------
    image : `lsst.images.VisitImage`
        The exposure.
    path : `pathlib.Path`
        PNG to write: 8-bit grey on the zscale range, row 0 at the bottom,
        NO_DATA black.
    """
    pixels = np.array(image.image.array, dtype=np.float32)
    if "NO_DATA" in image.mask.schema.names:
        pixels[image.mask.get("NO_DATA")] = np.nan
    normalise = zscale(pixels)
    low, high = float(normalise.vmin), float(normalise.vmax)
    grey = np.clip((pixels - low) * (255.0 / max(high - low, 1e-30)), 0.0, 255.0)
    grey = np.nan_to_num(grey, nan=0.0).astype(np.uint8)[::-1]
    # zlib's fastest level: the sky's noise hardly compresses anyway.
    PIL.Image.fromarray(grey, mode="L").save(path, compress_level=1)


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
    figure.subplots_adjust(left=0.03, right=0.94, bottom=0.07, top=0.84, wspace=0.2)
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
    save_png(figure, path)


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
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
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
    # The N(0, 1) density written out: scipy.stats would add 0.4 CPU-s to every report.
    axis.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2.0 * math.pi), color="black", lw=1.2, label="N(0, 1)")
    axis.set_yscale("log")
    axis.set_ylim(1e-5 if values.size > 10_000 else 1e-3, 1.0)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("density")
    axis.set_title(title, fontsize=10)
    axis.text(
        0.02, 0.97, "\n".join(lines), transform=axis.transAxes, va="top", fontsize=8, family="monospace"
    )
    axis.legend(loc="upper right", fontsize=8)
    save_png(figure, path)


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


def display_factor(shape: tuple[int, int]) -> int:
    """Return the side of the pixel blocks that bring an image panel of
    this shape to at most ``_DISPLAY_PIXELS`` a side (1: no binning).

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        Rows and columns of the image.

    Returns
    -------
    factor : `int`
        Block side for `block_reduce`.
    """
    return max(1, math.ceil(max(shape) / _DISPLAY_PIXELS))


def block_extent(bbox: Box, factor: int) -> tuple[float, float, float, float]:
    """Return the ``imshow`` extent, in the image's pixel coordinates, of
    `block_reduce`'s output for an image over ``bbox``: its whole blocks of
    ``factor`` x ``factor`` pixels (a remainder at the top and right is left
    out).

    Parameters
    ----------
    bbox : `lsst.images.Box`
        The image's bounding box.
    factor : `int`
        Block side (`display_factor`).

    Returns
    -------
    extent : `tuple` [`float`, `float`, `float`, `float`]
        Left, right, bottom and top pixel edges.
    """
    height, width = (bbox.y.size // factor) * factor, (bbox.x.size // factor) * factor
    return (bbox.x.start - 0.5, bbox.x.start + width - 0.5, bbox.y.start - 0.5, bbox.y.start + height - 0.5)


def block_reduce(array: np.ndarray, factor: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """Reduce blocks of ``factor`` x ``factor`` pixels with ``reduce``: an
    image panel at about the resolution it is displayed at.

    Parameters
    ----------
    array : `numpy.ndarray`
        Image (2-d).
    factor : `int`
        Block side (`display_factor`).
    reduce : callable
        Reduction taking ``axis`` (e.g. `numpy.mean`, `numpy.max`).

    Returns
    -------
    reduced : `numpy.ndarray`
        One value per whole block; a remainder at the top and right is left
        out.
    """
    if factor == 1:
        return array
    rows, columns = array.shape[0] // factor, array.shape[1] // factor
    blocks = array[: rows * factor, : columns * factor].reshape(rows, factor, columns, factor)
    # The contiguous axis first: numpy reduces it much faster.
    return reduce(reduce(blocks, axis=3), axis=1)


def _mask_layers(image: VisitImage) -> tuple[np.ndarray, list[Patch]]:
    """Return an index image of the mask's layers (0 none) and its legend."""
    mask = image.mask
    schema = mask.schema
    names = set(schema.names)
    words = _words(mask.array)
    layers = np.zeros(mask.array.shape[:2], dtype=np.int8)
    named = {name for name, _ in _MASK_LAYERS}
    legend = []
    for index, (name, colour) in enumerate(_MASK_LAYERS, start=1):
        planes = [plane for plane in names if plane not in named] if name == "other planes" else [name]
        planes = [plane for plane in planes if plane in names]
        if not planes:
            continue
        if words is None:
            pixels = planes_set(mask.array, schema, planes)
        else:
            pixels = (words & _words(schema.bitmask(*planes)[np.newaxis, :])[0]) != 0
        layers[pixels] = index
        legend.append(Patch(color=colour, label=f"{name} {100.0 * pixels.mean():.1f}%"))
    return layers, legend


def _words(array: np.ndarray) -> np.ndarray | None:
    """The mask bytes of each pixel as one unsigned integer (`None` where
    they are not 1, 2, 4 or 8): one comparison per pixel instead of one per
    byte and a reduction."""
    size = array.shape[-1]
    if size not in (1, 2, 4, 8):
        return None
    return np.ascontiguousarray(array).view(f"u{size}")[..., 0]


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
