"""`make_report`: read the outputs of ``calibrateImage``, draw the figures,
write ``index.html`` and ``summary.json``."""

from __future__ import annotations

__all__ = ("make_report",)

import contextlib
import datetime
import gc
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np

from lsst.daf.butler import Butler
from lsst.daf.butler.progress import Progress

from ..provenance import DISTRIBUTION, package_version
from .catalog_figures import plot_catalog_diagnostics, plot_visit_maps
from .coadds import coadd_rows
from .figures import plot_planes, plot_psf, plot_unit_gaussian_histogram, write_full_resolution
from .gather import DetectorData, find_detectors, load_detector, table_row
from .html import write_index
from .objects import object_summary
from .psf_residuals import psf_residuals
from .reference import TaskConfigs, match_reference
from .repeatability import repeatability_by_band
from .shapes import psf_model_shapes
from .sim_truth import read_simulated_truth
from .statistics import (
    clean_point_sources,
    distribution_summary,
    finite_or_none,
    normalised_background_residuals,
)

_LOG = logging.getLogger(__name__)

_REPEATABILITY_COLUMNS = ("coord_ra", "coord_dec", "psfFlux", "psfFluxErr", "psfInstFlux", "psfInstFluxErr")


def make_report(
    repo: str,
    collections: Sequence[str],
    output: str | Path,
    *,
    where: str = "",
    max_detectors: int = 16,
    match_radius: float = 1.0,
    truth: str | Path | None = None,
) -> dict[str, Any]:
    """Write the report of the single-frame processing in a repository.

    Parameters
    ----------
    repo : `str`
        Butler repository (path or alias).
    collections : sequence [`str`]
        Collections holding ``preliminary_visit_image`` and
        ``single_visit_star``.
    output : `str` or `pathlib.Path`
        Directory for ``index.html``, ``summary.json`` and the PNG figures
        (created if needed).
    where : `str`, optional
        Data ID expression restricting the visits and detectors.
    max_detectors : `int`, optional
        Detectors (the first in data ID order) given figures (and matched to
        the reference catalogue); all enter the table, the visit maps and
        the histograms.
    match_radius : `float`, optional
        Largest separation (arcsec) of a match between visits or to the
        reference catalogue, and of an object from its true source.
    truth : `str` or `pathlib.Path`, optional
        The ``truth/`` directory of simulated stacks
        (`lsst.obs.vista.sim`): the objects are compared with their true
        sources (completeness, purity, a variable star's light curve).

    Returns
    -------
    summary : `dict`
        What ``summary.json`` holds: ``generated`` (UTC, ISO),
        ``package`` and ``version``, ``repo``, ``collections``, ``where``,
        ``options``, ``configs`` (the ``calibrateImage`` config of each RUN
        collection read, saved beside the page), ``rows`` (`table_row` of
        each visit and detector, with ``psf_residuals``, ``reference`` and
        ``figures`` for those drawn), ``visit_maps``,
        ``normalised_residuals`` and ``repeatability`` by instrument (``n``,
        ``median``, ``robust_std``, ``figure``; repeatability also by band,
        with every visit pair compared), ``coadds``, ``objects``
        (`object_summary`, `None` without an ``object`` table), ``seconds`` and
        ``seconds_per_detector``.
    """
    start = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    residuals: dict[str, list[np.ndarray]] = {}
    stars_by_visit: dict[tuple[str, str, int], list] = {}
    summary: dict[str, Any] = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "package": DISTRIBUTION,
        "version": package_version(),
        "repo": str(repo),
        "collections": list(collections),
        "where": where,
        "options": {"max_detectors": max_detectors, "match_radius_arcsec": match_radius},
    }
    progress = Progress("lsst.obs.vista.report")
    with Butler.from_config(repo, collections=list(collections)) as butler, _startup_objects_frozen():
        data_ids = find_detectors(butler, where)
        if not data_ids:
            _LOG.warning("No calibrateImage outputs in %s (where %r).", ", ".join(collections), where)
        _LOG.info("Report on %d visit/detector(s) in %s.", len(data_ids), ", ".join(collections))
        configs = TaskConfigs(butler)
        detector_start = time.perf_counter()
        for index, data_id in enumerate(progress.wrap(data_ids, desc="Detectors", total=len(data_ids))):
            begin = time.perf_counter()
            data = load_detector(butler, data_id)
            row = table_row(data)
            instrument = row["instrument"]
            residuals.setdefault(instrument, []).append(normalised_background_residuals(data.image))
            clean = data.stars[clean_point_sources(data.stars)]
            stars_by_visit.setdefault((instrument, row["band"], row["visit"]), []).append(
                clean[list(_REPEATABILITY_COLUMNS)]
            )
            row["run"] = data.run
            if index < max_detectors:
                _draw_detector(butler, data, row, configs(data.run), match_radius, output)
            rows.append(row)
            _LOG.info(
                "[%d/%d] %s: %.1f s.", index + 1, len(data_ids), data.label, time.perf_counter() - begin
            )
        detector_seconds = time.perf_counter() - detector_start
        summary["configs"] = _save_configs(configs.runs, output)
        summary["rows"] = rows
        summary["visit_maps"] = _visit_maps(rows, output)
        coadds = coadd_rows(butler, output)
        summary["coadds"] = coadds.rows
        summary["objects"] = object_summary(
            butler,
            output,
            coadds,
            read_simulated_truth(truth) if truth is not None else None,
            match_radius,
        )
    summary["normalised_residuals"] = _residual_histograms(residuals, output)
    summary["repeatability"] = _repeatability_histograms(stars_by_visit, match_radius, output)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["seconds_per_detector"] = round(detector_seconds / len(rows), 2) if rows else None
    (output / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    write_index(output / "index.html", summary)
    _LOG.info("Report written to %s in %.1f s.", output / "index.html", summary["seconds"])
    return summary


@contextlib.contextmanager
def _startup_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist when the report starts (modules, the
    butler and its registry) out of the garbage collector's full
    collections until it ends: the figures allocate enough to trigger
    several, and each would otherwise walk all of them again."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _draw_detector(
    butler: Butler, data: DetectorData, row: dict[str, Any], config: Any, match_radius: float, output: Path
) -> None:
    """Draw the figures of one visit and detector and add their numbers to its row."""
    figures = {
        "planes": f"{data.label}_planes.png",
        "image": f"{data.label}_image.png",
        "psf": f"{data.label}_psf.png",
        "catalog": f"{data.label}_catalog.png",
    }
    plot_planes(data, output / figures["planes"])
    write_full_resolution(data.image, output / figures["image"])
    stacked = psf_residuals(data.image, data.stars)
    plot_psf(stacked, f"{data.label} PSF", output / figures["psf"])
    row["psf_residuals"] = {
        "selection": stacked.selection,
        "n_stars": stacked.n_stars,
        "max_abs_residual": finite_or_none(stacked.max_abs_residual),
    }
    matches = match_reference(butler, data, config, match_radius * u.arcsec)
    model_shapes = psf_model_shapes(data.image)
    plot_catalog_diagnostics(data, matches, model_shapes, row["pixel_scale"], output / figures["catalog"])
    finite = np.isfinite(matches.source_mag) & np.isfinite(matches.reference_mag)
    delta = (matches.source_mag - matches.reference_mag)[finite]
    row["reference"] = {
        "catalog": matches.catalog,
        "n_matches": matches.n,
        "astrometric_rms_mas": finite_or_none(np.sqrt(np.mean(matches.d_ra**2 + matches.d_dec**2)))
        if matches.n
        else None,
        "photometric_median": finite_or_none(np.median(delta)) if delta.size else None,
        "magnitude": matches.magnitude_label,
        "note": matches.note,
    }
    row["psf_ellipticity"] = finite_or_none(np.nanmean(model_shapes.magnitude))
    row["figures"] = figures


def _save_configs(configs: dict[str, Any], output: Path) -> dict[str, str | None]:
    """Save the ``calibrateImage`` configs of the RUN collections beside the
    page, one file per distinct config; return the file of each run (`None`
    where there was none)."""
    files: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for run, config in configs.items():
        if config is None:
            files[run] = None
            continue
        text = config.saveToString()
        if text not in names:
            names[text] = "calibrateImage_config_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", run) + ".py"
            (output / names[text]).write_text(text)
        files[run] = names[text]
    return files


def _visit_maps(rows: list[dict[str, Any]], output: Path) -> list[dict[str, Any]]:
    """Draw each visit's detectors on the sky, coloured by their numbers."""
    visits: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("corners"):
            visits.setdefault((row["instrument"], row["visit"]), []).append(row)
    maps = []
    for (instrument, visit), members in sorted(visits.items()):
        figure = f"visit_map_{instrument}-{visit}.png"
        band = members[0]["band"]
        plot_visit_maps(
            members, f"{instrument} visit {visit} band {band}: {len(members)} detector(s)", output / figure
        )
        maps.append(
            {
                "instrument": instrument,
                "visit": visit,
                "band": band,
                "n_detectors": len(members),
                "figure": figure,
            }
        )
    return maps


def _residual_histograms(residuals: dict[str, list[np.ndarray]], output: Path) -> dict[str, Any]:
    """Pool the normalised background residuals per instrument and draw them."""
    result = {}
    for instrument, arrays in sorted(residuals.items()):
        values = np.concatenate(arrays)
        stats = distribution_summary(values)
        figure = f"normalised_residuals_{instrument}.png"
        plot_unit_gaussian_histogram(
            values,
            title=f"{instrument}: background pixels, image / sqrt(variance)",
            xlabel="image / sqrt(variance)",
            lines=[
                f"pixels     {stats['n']}",
                f"detectors  {len(arrays)}",
                f"robust std {_fmt(stats['robust_std'])}",
                f"median     {_fmt(stats['median'])}",
            ],
            path=output / figure,
        )
        result[instrument] = {**stats, "n_detectors": len(arrays), "figure": figure}
    return result


def _repeatability_histograms(
    stars_by_visit: dict[tuple[str, str, int], list], radius: float, output: Path
) -> dict[str, Any]:
    """Match visits per instrument and band, pool the pairs per instrument
    and draw them where there are any."""
    pairs = repeatability_by_band(stars_by_visit, radius * u.arcsec)
    result: dict[str, Any] = {}
    for (instrument, band), visit_pairs in pairs.items():
        group = result.setdefault(
            instrument, {"radius_arcsec": radius, "bands": {}, "instrumental": False, "deltas": []}
        )
        deltas = np.concatenate([pair.deltas for pair in visit_pairs]) if visit_pairs else np.zeros(0)
        group["bands"][band] = {
            **distribution_summary(deltas),
            "visit_pairs": [pair.to_dict() for pair in visit_pairs],
        }
        group["instrumental"] |= any(pair.flux == "instrumental" for pair in visit_pairs)
        group["deltas"].append(deltas)
    for instrument, group in result.items():
        deltas = np.concatenate(group.pop("deltas"))
        group.update(distribution_summary(deltas))
        group["figure"] = None
        if deltas.size:
            figure = f"repeatability_{instrument}.png"
            lines = [f"pairs      {deltas.size}", f"robust std {_fmt(group['robust_std'])}"]
            if group["instrumental"]:
                lines.append("some visits: instrumental flux,")
                lines.append("  normalised by median ratio")
            plot_unit_gaussian_histogram(
                deltas,
                title=f"{instrument}: repeatability of psfFlux between visits",
                xlabel="(f_i - f_j) / sqrt(σ_i² + σ_j²)",
                lines=lines,
                path=output / figure,
            )
            group["figure"] = figure
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
