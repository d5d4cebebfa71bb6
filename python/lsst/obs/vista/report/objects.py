"""The objects part of the report: the primary rows of each ``object``
table, a colour–magnitude and a colour–colour diagram, number counts
against the coadds' depth, and, given the simulator's truth, completeness
and purity and the light curve of a variable star."""

from __future__ import annotations

__all__ = ("object_summary",)

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.time import Time
from matplotlib.figure import Figure

from lsst.daf.butler import Butler, DatasetRef, MissingDatasetTypeError
from lsst.images import Box

from ..objects import light_curve
from .coadds import CoaddSection
from .figures import save_png
from .sim_truth import SimulatedTruth
from .statistics import DEPTH_SIGMA, distribution_summary, finite_or_none

_LOG = logging.getLogger(__name__)

_BAND_ORDER = ("u", "g", "r", "i", "z", "y", "Y", "J", "H", "K", "Ks")
"""Bands from blue to red: colours are bluer minus redder band."""

COMPLETENESS_SNR = 10.0
"""True S/N (mean flux over the coadd's local PSF-flux error, best band)
above which completeness is quoted."""

COLOUR_SNR = 50.0
"""True S/N (as `COMPLETENESS_SNR`) from which the constant stars' colours
are compared with the true ones, where a colour's noise is a few hundredths of
a magnitude (0.03 at S/N 50 in both bands)."""


def object_summary(
    butler: Butler,
    output: Path,
    coadds: CoaddSection,
    truth: SimulatedTruth | None,
    match_radius: float,
) -> dict[str, Any] | None:
    """Summarise the ``object`` tables and draw their figures.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with the report's collections.
    output : `pathlib.Path`
        Directory for the figures.
    coadds : `CoaddSection`
        The coadd part of the report (`coadd_rows`): the depth of each band
        and where each coadd has data.
    truth : `SimulatedTruth` or `None`
        The simulator's truth, for completeness, purity and the light curve.
    match_radius : `float`
        Largest separation (arcsec) of an object from its true source.

    Returns
    -------
    summary : `dict` or `None`
        ``n_objects`` (primary), ``bands``, ``depth_5sigma`` per band,
        ``extended_fraction``, ``deblended_fraction``, ``figure``; with
        truth also ``completeness``, ``purity``, ``colour_offsets`` (one
        per colour of neighbouring bands) and ``light_curve``; `None` if
        there is no ``object`` table.
    """
    try:
        refs = list(butler.query_datasets("object", explain=False))
    except MissingDatasetTypeError:
        return None
    if not refs:
        return None
    tables = [butler.get(ref) for ref in refs]
    objects = vstack([table[np.asarray(table["detect_isPrimary"], dtype=bool)] for table in tables])
    skymap = str(refs[0].dataId["skymap"])
    bands = _ordered_bands(objects)
    depth = {
        band: finite_or_none(np.median([row["depth_5sigma"] for row in coadds.rows if row["band"] == band]))
        for band in bands
        if any(row["band"] == band and row["depth_5sigma"] is not None for row in coadds.rows)
    }
    mags = {band: _ab_mag(objects[f"{band}_psfFlux"]) for band in bands}
    summary: dict[str, Any] = {
        "n_objects": len(objects),
        "bands": bands,
        "depth_5sigma": depth,
        "extended_fraction": finite_or_none(np.mean(np.asarray(objects["refExtendedness"]) > 0.5)),
        "deblended_fraction": finite_or_none(np.mean(np.asarray(objects["parentObjectId"]) != 0)),
    }
    matched = None
    if truth is not None and len(objects):
        matched = _against_truth(butler, coadds.covered, objects, bands, truth, match_radius, summary)
    summary["figure"] = "objects.png"
    _plot_objects(objects, bands, mags, depth, truth, matched, output / summary["figure"])
    if matched is not None:
        summary["light_curve"] = _variable_light_curve(butler, skymap, objects, truth, matched, output)
    _LOG.info("Report on %d primary object(s) in %d band(s).", len(objects), len(bands))
    return summary


def _ordered_bands(objects: Table) -> list[str]:
    bands = [name.removesuffix("_psfFlux") for name in objects.colnames if name.endswith("_psfFlux")]
    return sorted(bands, key=lambda b: (_BAND_ORDER.index(b) if b in _BAND_ORDER else len(_BAND_ORDER), b))


def _ab_mag(flux: Any) -> np.ndarray:
    values = np.asarray(flux, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, (values * u.nJy).to_value(u.ABmag), np.nan)


def _colour(objects: Table, blue: str, red: str) -> np.ndarray:
    """PSF-flux colour (AB) of every object."""
    return _ab_mag(objects[f"{blue}_psfFlux"]) - _ab_mag(objects[f"{red}_psfFlux"])


def _true_colour(sources: Table, blue: str, red: str) -> np.ndarray:
    """True colour (AB, mean fluxes) of every source; NaN where a band has none."""
    return _ab_mag(sources[f"{blue}_flux"]) - _ab_mag(sources[f"{red}_flux"])


def _local_sigma(
    butler: Butler,
    covered: Mapping[DatasetRef, Box],
    band: str,
    ra: np.ndarray,
    dec: np.ndarray,
    sigma: float,
) -> np.ndarray:
    """PSF-flux error (nJy) at each position in a band's coadds (``covered``:
    each coadd's box with data): the median error scaled by the local noise
    (inf where no coadd has data)."""
    result = np.full(len(ra), np.inf)
    sky = SkyCoord(ra * u.deg, dec * u.deg)
    for ref, box in covered.items():
        if ref.dataId["band"] != band:
            continue
        # Only the components it needs, and only where the coadd has data.
        planes = butler.get(
            ref.makeComponentRef("components"),
            parameters={"components": ["variance", "mask", "sky_projection"], "bbox": box},
        )
        variance_plane = planes["variance"]
        pixels = planes["sky_projection"].sky_to_pixel(sky)
        ix = np.rint(np.asarray(pixels.x, dtype=float)).astype(int) - variance_plane.bbox.x.start
        iy = np.rint(np.asarray(pixels.y, dtype=float)).astype(int) - variance_plane.bbox.y.start
        variance = variance_plane.array
        good = (planes["mask"].get("NO_DATA") == 0) & (variance > 0)
        inside = (ix >= 0) & (iy >= 0) & (ix < variance.shape[1]) & (iy < variance.shape[0])
        inside[inside] = good[iy[inside], ix[inside]]
        median = float(np.median(variance[good]))
        local = sigma * np.sqrt(variance[iy[inside], ix[inside]] / median)
        result[inside] = np.minimum(result[inside], local)
    return result


def _against_truth(
    butler: Butler,
    covered: Mapping[DatasetRef, Box],
    objects: Table,
    bands: list[str],
    truth: SimulatedTruth,
    radius: float,
    summary: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Match objects and true sources; add completeness, purity and the
    colour offsets of bright stars (measured − true: ``colour``,
    ``snr_min``, ``n``, ``median``, ``robust_std``) to ``summary``; return
    the matches."""
    sources = truth.sources
    ra, dec = np.asarray(sources["ra"], dtype=float), np.asarray(sources["dec"], dtype=float)
    snr = np.zeros(len(sources))
    for band, depth in summary["depth_5sigma"].items():
        if depth is None or f"{band}_flux" not in sources.colnames:
            continue
        sigma = (depth * u.ABmag).to_value(u.nJy) / DEPTH_SIGMA
        band_snr = np.asarray(sources[f"{band}_flux"], dtype=float) / _local_sigma(
            butler, covered, band, ra, dec, sigma
        )
        snr = np.fmax(snr, np.nan_to_num(band_snr))
    covered = snr > 0
    true_sky = SkyCoord(ra * u.deg, dec * u.deg)
    object_sky = SkyCoord(
        np.asarray(objects["coord_ra"], dtype=float) * u.deg,
        np.asarray(objects["coord_dec"], dtype=float) * u.deg,
    )
    to_object, separation, _ = true_sky.match_to_catalog_sky(object_sky)
    found = covered & (separation.to_value(u.arcsec) < radius)
    to_true, object_separation, _ = object_sky.match_to_catalog_sky(true_sky[covered])
    genuine = object_separation.to_value(u.arcsec) < radius
    bright = covered & (snr >= COMPLETENESS_SNR)
    summary["completeness"] = {
        "snr_min": COMPLETENESS_SNR,
        "n_true": int(np.count_nonzero(bright)),
        "n_found": int(np.count_nonzero(found & bright)),
        "fraction": finite_or_none(np.count_nonzero(found & bright) / np.count_nonzero(bright))
        if bright.any()
        else None,
        "n_true_all": int(np.count_nonzero(covered)),
        "n_found_all": int(np.count_nonzero(found)),
    }
    summary["purity"] = {
        "n_objects": len(objects),
        "n_matched": int(np.count_nonzero(genuine)),
        "fraction": finite_or_none(np.mean(genuine)) if len(objects) else None,
        "spurious": [int(i) for i in np.asarray(objects["objectId"])[~genuine]],
    }
    # Constant stars only: a coadd sees a variable at the mean of its visits' phases, not at its
    # mean flux.
    bright_stars = (
        found
        & ~np.asarray(sources["is_galaxy"], dtype=bool)
        & (np.asarray(sources["amplitude"]) == 0)
        & (snr >= COLOUR_SNR)
    )
    summary["colour_offsets"] = [
        {
            "colour": f"{blue}-{red}",
            "snr_min": COLOUR_SNR,
            **distribution_summary(
                _colour(objects, blue, red)[to_object[bright_stars]]
                - _true_colour(sources, blue, red)[bright_stars]
            ),
        }
        for blue, red in zip(bands, bands[1:], strict=False)
    ]
    return {
        "to_object": to_object,
        "found": found,
        "snr": snr,
        "covered": covered,
        "genuine": genuine,
        "bright_stars": bright_stars,
    }


def _variable_light_curve(
    butler: Butler,
    skymap: str,
    objects: Table,
    truth: SimulatedTruth,
    matched: dict[str, np.ndarray],
    output: Path,
) -> dict[str, Any] | None:
    """Draw the light curve of the brightest detected variable star with
    two or more visits in a band; return its numbers (`None` if none)."""
    sources = truth.sources
    variable = matched["found"] & (np.asarray(sources["amplitude"]) > 0)
    for index in np.argsort(-matched["snr"]):
        if not variable[index]:
            continue
        object_id = int(objects["objectId"][matched["to_object"][index]])
        curve = light_curve(butler, object_id, skymap=skymap)
        if len(curve) == 0:
            continue
        bands = [b for b in sorted(set(curve["band"])) if np.count_nonzero(curve["band"] == b) >= 2]
        if bands:
            break
    else:
        return None
    mjd = Time(np.asarray(curve["midpointMjdTai"], dtype=float), format="mjd", scale="tai").utc.mjd
    entry: dict[str, Any] = {
        "objectId": object_id,
        "true_id": int(sources["id"][index]),
        "true_amplitude_mag": float(sources["amplitude"][index]),
        "true_period_days": float(sources["period"][index]),
        "bands": {},
        "figure": "light_curve.png",
    }
    figure = Figure(figsize=(8, 4.5))
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.12, top=0.92)
    axis = figure.subplots()
    grid = np.linspace(mjd.min() - 0.02, mjd.max() + 0.02, 400)
    for band in bands:
        rows = np.asarray(curve["band"]) == band
        flux = np.asarray(curve["psfFlux"], dtype=float)[rows]
        error = np.asarray(curve["psfFluxErr"], dtype=float)[rows]
        expected = truth.flux_at(index, band, mjd[rows])
        line = axis.plot(24 * (grid - grid[0]), truth.flux_at(index, band, grid), lw=1, label=f"{band} truth")
        axis.errorbar(
            24 * (mjd[rows] - grid[0]),
            flux,
            error,
            fmt="o",
            color=line[0].get_color(),
            label=f"{band} forced",
        )
        measured_range = float(np.ptp(flux))
        true_range = float(np.ptp(expected))
        entry["bands"][band] = {
            "n_visits": int(rows.sum()),
            "measured_range_njy": finite_or_none(measured_range),
            "true_range_njy": finite_or_none(true_range),
            "range_ratio": finite_or_none(measured_range / true_range) if true_range > 0 else None,
            "chi2_per_point": finite_or_none(np.mean(((flux - expected) / error) ** 2)),
        }
    axis.set_xlabel(f"hours since MJD {grid[0]:.4f} (UTC)")
    axis.set_ylabel("psfFlux (nJy)")
    axis.set_title(
        f"objectId {object_id}: true semi-amplitude {entry['true_amplitude_mag']:.2f} mag, "
        f"period {24 * entry['true_period_days']:.2f} h"
    )
    axis.legend(fontsize="small")
    save_png(figure, output / entry["figure"], dpi=80)
    return entry


def _plot_objects(
    objects: Table,
    bands: list[str],
    mags: dict[str, np.ndarray],
    depth: dict[str, float | None],
    truth: SimulatedTruth | None,
    matched: dict[str, np.ndarray] | None,
    path: Path,
) -> None:
    """Colour–magnitude, colour–colour, number counts and completeness."""
    figure = Figure(figsize=(20, 5))
    # Fixed margins rather than a layout engine, which costs as much as the drawing.
    figure.subplots_adjust(left=0.035, right=0.99, bottom=0.11, top=0.93, wspace=0.2)
    axes = figure.subplots(1, 4)
    extended = np.asarray(objects["refExtendedness"], dtype=float) > 0.5
    if len(bands) >= 2:
        blue, red = bands[0], bands[1]
        colour = _colour(objects, blue, red)
        for selection, label, marker in ((~extended, "point-like", "*"), (extended, "extended", "o")):
            axes[0].scatter(colour[selection], mags[red][selection], s=12, marker=marker, label=label)
        axes[0].invert_yaxis()
        axes[0].set_xlabel(f"{blue} − {red} (psfFlux, AB)")
        axes[0].set_ylabel(f"{red} (AB)")
        axes[0].legend(fontsize="small")
        axes[0].set_title("colour–magnitude")
    if len(bands) >= 3:
        # Measured colours of the objects, and the true ones of the bright stars found: the stars'
        # locus (the simulator's stars have 2MASS-like colours) and how far the objects fall off it.
        x_bands, y_bands = bands[1:3], bands[0:2]
        x, y = _colour(objects, *x_bands), _colour(objects, *y_bands)
        for selection, label, marker in ((~extended, "point-like", "*"), (extended, "extended", "o")):
            axes[1].scatter(x[selection], y[selection], s=8, marker=marker, label=label)
        if matched is not None and truth is not None:
            true_x = _true_colour(truth.sources, *x_bands)[matched["bright_stars"]]
            true_y = _true_colour(truth.sources, *y_bands)[matched["bright_stars"]]
            axes[1].scatter(
                true_x,
                true_y,
                s=16,
                marker="x",
                color="k",
                label=f"true, constant stars with S/N ≥ {COLOUR_SNR:g}",
            )
            if np.isfinite(true_x).any() and np.isfinite(true_y).any():
                # Around the stars' locus: faint objects' colours scatter far wider.
                axes[1].set_xlim(np.nanmin(true_x) - 0.5, np.nanmax(true_x) + 0.5)
                axes[1].set_ylim(np.nanmin(true_y) - 0.5, np.nanmax(true_y) + 0.5)
        axes[1].set_xlabel(f"{x_bands[0]} − {x_bands[1]} (psfFlux, AB)")
        axes[1].set_ylabel(f"{y_bands[0]} − {y_bands[1]} (psfFlux, AB)")
        axes[1].legend(fontsize="small")
        axes[1].set_title("colour–colour")
    elif len(bands) == 2 and matched is not None and truth is not None:
        # Two bands make one colour: its error against the truth instead.
        found = matched["found"]
        to_object = matched["to_object"][found]
        delta = colour[to_object] - _true_colour(truth.sources, blue, red)[found]
        axes[1].scatter(mags[red][to_object], delta, s=8)
        axes[1].axhline(0.0, color="k", lw=0.5)
        axes[1].set_xlabel(f"{red} (AB)")
        axes[1].set_ylabel(f"{blue} − {red}: measured − true")
        axes[1].set_title("two bands: colour against truth (no colour–colour)")
    bins = np.arange(14.0, 26.01, 0.5)
    for band in bands:
        line = axes[2].hist(mags[band][np.isfinite(mags[band])], bins=bins, histtype="step", label=band)
        colour_of_band = line[2][0].get_edgecolor()
        if truth is not None and matched is not None and f"{band}_flux" in truth.sources.colnames:
            true_mags = _ab_mag(truth.sources[f"{band}_flux"])[matched["covered"]]
            axes[2].hist(
                true_mags[np.isfinite(true_mags)],
                bins=bins,
                histtype="step",
                linestyle="--",
                color=colour_of_band,
                label=f"{band} truth",
            )
        if depth.get(band) is not None:
            axes[2].axvline(depth[band], color=colour_of_band, linestyle=":", label=f"{band} 5σ depth")
    axes[2].set_xlabel("psfFlux magnitude (AB)")
    axes[2].set_ylabel("objects per 0.5 mag")
    axes[2].legend(fontsize="small")
    axes[2].set_title("number counts")
    if matched is not None:
        snr = matched["snr"][matched["covered"]]
        found = matched["found"][matched["covered"]]
        edges = np.array([1, 3, 5, 10, 20, 50, 100, 1e4])
        which = np.digitize(snr, edges) - 1
        fraction = [found[which == k].mean() if np.any(which == k) else np.nan for k in range(len(edges) - 1)]
        axes[3].step(edges[:-1], fraction, where="post")
        axes[3].set_xscale("log")
        axes[3].set_ylim(0, 1.05)
        axes[3].axvline(COMPLETENESS_SNR, color="k", linestyle=":")
        axes[3].set_xlabel("true S/N (best band)")
        axes[3].set_ylabel("fraction detected")
        axes[3].set_title(f"completeness; purity {np.mean(matched['genuine']):.1%}")
    else:
        axes[3].set_axis_off()
    save_png(figure, path, dpi=80)
