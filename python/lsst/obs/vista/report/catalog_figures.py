"""The report's figures of catalogue quantities: per detector, residuals
against the reference catalogue, PSF ellipticity and the size-magnitude
diagram; per visit, maps of the detectors' numbers on the sky."""

from __future__ import annotations

__all__ = ("plot_catalog_diagnostics", "plot_visit_maps")

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from .figures import save_png
from .gather import DetectorData
from .reference import ReferenceMatches
from .shapes import ShapeField, source_shapes
from .statistics import clean_point_sources

_ASTROMETRY_KEY_MAS = 50.0
"""Length of the key whisker of the astrometric residuals."""

_ELLIPTICITY_KEY = 0.05
"""Length of the key whisker of the PSF ellipticity."""

_MAP_QUANTITIES = (
    ("psf_fwhm_arcsec", "PSF FWHM (arcsec)", "viridis"),
    ("zero_point", "zero point (AB mag of one image unit)", "cividis"),
    ("sky_level", "sky level (image units)", "magma"),
)
"""(row key, title, colour map) of the panels of a visit's map."""


def plot_catalog_diagnostics(
    data: DetectorData,
    matches: ReferenceMatches,
    model_shapes: ShapeField,
    pixel_scale: float | None,
    path: Path,
) -> None:
    """Draw a detector's astrometric and photometric residuals against the
    reference catalogue, its PSF ellipticity and its size-magnitude diagram.

    Parameters
    ----------
    data : `DetectorData`
        Exposure and catalogue.
    matches : `ReferenceMatches`
        Clean point sources matched to the reference catalogue.
    model_shapes : `ShapeField`
        The PSF model's shape on a grid.
    pixel_scale : `float` or `None`
        Arcsec per pixel (sizes in pixels without it).
    path : `pathlib.Path`
        PNG to write.
    """
    figure = Figure(figsize=(12.0, 9.6))
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.06, top=0.93, wspace=0.22, hspace=0.22)
    axes = figure.subplots(2, 2)
    bbox = data.image.bbox
    limits = ((bbox.x.start, bbox.x.stop), (bbox.y.start, bbox.y.stop))
    _astrometric_whiskers(axes[0, 0], matches, limits)
    _photometric_residuals(axes[0, 1], matches)
    used = (
        np.asarray(data.stars["calib_psf_used"], dtype=bool)
        if "calib_psf_used" in data.stars.colnames
        else np.zeros(len(data.stars), dtype=bool)
    )
    _ellipticity_whiskers(axes[1, 0], model_shapes, source_shapes(data.stars, used), limits)
    _size_magnitude(axes[1, 1], data, model_shapes, pixel_scale)
    figure.suptitle(f"{data.label}  band {data.data_id['band']}: catalogue diagnostics", fontsize=11)
    save_png(figure, path)


def plot_visit_maps(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Draw the detectors of one visit on the sky, coloured by PSF FWHM,
    zero point and sky level.

    Parameters
    ----------
    rows : sequence [`dict`]
        Table rows (`table_row`) of the visit's detectors, each with
        ``corners``: the (RA, Dec) degrees of its four corners.
    title : `str`
        Figure title.
    path : `pathlib.Path`
        PNG to write.
    """
    ra0 = np.mean([np.mean([c[0] for c in row["corners"]]) for row in rows])
    dec0 = np.mean([np.mean([c[1] for c in row["corners"]]) for row in rows])
    cos_dec = np.cos(np.radians(dec0))
    polygons = [
        [
            (((ra - ra0 + 180.0) % 360.0 - 180.0) * cos_dec * 60.0, (dec - dec0) * 60.0)
            for ra, dec in row["corners"]
        ]
        for row in rows
    ]
    figure = Figure(figsize=(15.0, 4.4))
    figure.subplots_adjust(left=0.05, right=0.97, bottom=0.13, top=0.86, wspace=0.3)
    axes = figure.subplots(1, len(_MAP_QUANTITIES), sharex=True, sharey=True)
    for axis, (key, label, cmap) in zip(axes, _MAP_QUANTITIES, strict=True):
        values = np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)
        collection = PolyCollection(
            polygons, cmap=colormaps[cmap].with_extremes(bad="#dddddd"), edgecolors="black", linewidths=0.6
        )
        collection.set_array(np.ma.masked_invalid(values))
        axis.add_collection(collection)
        for polygon, row, value in zip(polygons, rows, values, strict=True):
            centre = np.mean(polygon, axis=0)
            text = f"{row['detector']}\n" + ("none" if not np.isfinite(value) else f"{value:.2f}")
            axis.text(*centre, text, ha="center", va="center", fontsize=7)
        if np.isfinite(values).any():
            figure.colorbar(collection, ax=axis, shrink=0.85)
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("ΔRA cos Dec (arcmin)")
        axis.set_aspect("equal")
        axis.autoscale_view()
    axes[0].invert_xaxis()  # east to the left, as on the sky
    axes[0].set_ylabel("ΔDec (arcmin)")
    figure.suptitle(title, fontsize=11)
    save_png(figure, path)


def _astrometric_whiskers(axis: Axes, matches: ReferenceMatches, limits: tuple) -> None:
    axis.set_title("astrometric residuals, source − reference", fontsize=9)
    _detector_axes(axis, limits)
    if matches.n == 0:
        _say(axis, matches.note)
        return
    size = max(limits[0][1] - limits[0][0], limits[1][1] - limits[1][0])
    # One key length of residual is drawn as a tenth of the detector.
    scale = _ASTROMETRY_KEY_MAS / (0.1 * size)
    quiver = axis.quiver(
        matches.x, matches.y, -matches.d_ra, matches.d_dec, angles="xy", scale_units="xy", scale=scale,
        width=0.003, color="#1f77b4",
    )  # fmt: skip
    axis.quiverkey(quiver, 0.85, 0.04, _ASTROMETRY_KEY_MAS, f"{_ASTROMETRY_KEY_MAS:g} mas", labelpos="N")
    rms = np.sqrt(np.mean(matches.d_ra**2 + matches.d_dec**2))
    axis.text(
        0.02, 0.02,
        f"{matches.n} matches to {matches.catalog}\nrms {rms:.1f} mas (2D)\narrows: −ΔRA (east left), ΔDec",
        transform=axis.transAxes, fontsize=7, va="bottom",
    )  # fmt: skip


def _photometric_residuals(axis: Axes, matches: ReferenceMatches) -> None:
    axis.set_title("PSF magnitude − reference magnitude", fontsize=9)
    finite = np.isfinite(matches.source_mag) & np.isfinite(matches.reference_mag)
    if not finite.any():
        _say(axis, matches.note if matches.n == 0 else "no finite magnitudes to compare")
        return
    reference = matches.reference_mag[finite]
    delta = (matches.source_mag - matches.reference_mag)[finite]
    used = matches.used[finite]
    axis.scatter(reference[~used], delta[~used], s=8, color="#7f7f7f", label="matched", rasterized=True)
    axis.scatter(
        reference[used], delta[used], s=10, color="#d62728", label="used for the zero point", rasterized=True
    )
    median = float(np.median(delta))
    axis.axhline(median, color="black", lw=0.8, label=f"median {median:+.3f}")
    spread = max(0.2, 5.0 * 1.4826 * float(np.median(np.abs(delta - median))))
    axis.set_ylim(median - spread, median + spread)
    axis.set_xlabel(matches.magnitude_label, fontsize=8)
    axis.set_ylabel("Δ mag")
    axis.legend(fontsize=7, loc="upper left")
    axis.text(0.98, 0.02, matches.note, transform=axis.transAxes, fontsize=7, ha="right", va="bottom")


def _ellipticity_whiskers(axis: Axes, model: ShapeField, stars: ShapeField, limits: tuple) -> None:
    axis.set_title("PSF ellipticity: model (black), PSF stars measured (red)", fontsize=9)
    _detector_axes(axis, limits)
    size = max(limits[0][1] - limits[0][0], limits[1][1] - limits[1][0])
    # The key ellipticity is drawn as a tenth of the detector.
    scale = _ELLIPTICITY_KEY / (0.1 * size)
    quiver = None
    for shapes, colour, width in ((stars, "#d62728", 0.002), (model, "black", 0.004)):
        good = np.isfinite(shapes.e1) & np.isfinite(shapes.e2)
        if not good.any():
            continue
        magnitude, angle = shapes.magnitude[good], shapes.angle[good]
        quiver = axis.quiver(
            shapes.x[good], shapes.y[good], magnitude * np.cos(angle), magnitude * np.sin(angle),
            angles="xy", scale_units="xy", scale=scale, pivot="middle", headwidth=0, headlength=0,
            headaxislength=0, width=width, color=colour,
        )  # fmt: skip
    if quiver is None:
        _say(axis, "no shapes")
        return
    axis.quiverkey(quiver, 0.85, 0.04, _ELLIPTICITY_KEY, f"e = {_ELLIPTICITY_KEY:g}", labelpos="N")
    axis.text(
        0.02, 0.02, f"model: mean |e| {np.nanmean(model.magnitude):.3f}\nstars: {stars.x.size}",
        transform=axis.transAxes, fontsize=7, va="bottom",
    )  # fmt: skip


def _size_magnitude(axis: Axes, data: DetectorData, model: ShapeField, pixel_scale: float | None) -> None:
    stars = data.stars
    axis.set_title("size against magnitude (star/galaxy separation)", fontsize=9)
    if len(stars) == 0:
        _say(axis, "no sources")
        return
    factor, unit = (pixel_scale, "arcsec") if pixel_scale else (1.0, "pixels")
    everything = source_shapes(stars, np.ones(len(stars), dtype=bool))
    magnitude = np.asarray(stars["psfMag"], dtype=float)
    label = "psfMag (AB)"
    if not np.isfinite(magnitude).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            magnitude = -2.5 * np.log10(np.asarray(stars["psfInstFlux"], dtype=float))
        label = "−2.5 log10 psfInstFlux (no zero point)"
    extendedness = np.asarray(stars["extendedness"], dtype=float)
    clean = clean_point_sources(stars)
    for selected, colour, name in (
        (extendedness == 1, "#ff7f0e", "extended"),
        ((extendedness == 0) & ~clean, "#9edae5", "point, flagged"),
        (clean, "#2ca02c", "point, clean"),
    ):
        axis.scatter(
            magnitude[selected], everything.fwhm[selected] * factor, s=6, color=colour,
            label=f"{name} ({int(selected.sum())})", rasterized=True,
        )  # fmt: skip
    model_fwhm = float(np.nanmedian(model.fwhm)) * factor
    axis.axhline(model_fwhm, color="black", lw=0.8, ls="--", label=f"PSF model {model_fwhm:.2f} {unit}")
    finite = everything.fwhm[np.isfinite(everything.fwhm)] * factor
    if finite.size:
        axis.set_ylim(0, max(3.0 * model_fwhm, float(np.percentile(finite, 95))))
    axis.set_xlabel(label)
    axis.set_ylabel(f"second-moment FWHM ({unit})")
    axis.legend(fontsize=7, loc="upper right")


def _detector_axes(axis: Axes, limits: tuple) -> None:
    axis.set_xlim(*limits[0])
    axis.set_ylim(*limits[1])
    axis.set_aspect("equal")
    axis.set_xlabel("x (pixels)")
    axis.set_ylabel("y (pixels)")


def _say(axis: Axes, text: str) -> None:
    axis.text(0.5, 0.5, text, ha="center", va="center", transform=axis.transAxes, fontsize=8, wrap=True)
