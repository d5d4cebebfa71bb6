"""`make_report`: read the outputs of ``calibrateImage``, draw the figures,
write ``index.html`` and ``summary.json``."""

from __future__ import annotations

__all__ = ("make_report",)

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np

from lsst.daf.butler import Butler

from .coadds import coadd_rows
from .figures import plot_planes, plot_psf, plot_unit_gaussian_histogram
from .gather import find_detectors, load_detector, table_row
from .html import write_index
from .psf_residuals import psf_residuals
from .repeatability import repeatability_by_band
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
        Detectors (the first in data ID order) given image and PSF figures;
        all enter the table and the histograms.
    match_radius : `float`, optional
        Largest separation (arcsec) of a match between visits.

    Returns
    -------
    summary : `dict`
        What ``summary.json`` holds: ``rows`` (`table_row` of each visit and
        detector, with ``psf_residuals`` and ``figures`` for those drawn),
        ``normalised_residuals`` and ``repeatability`` by instrument (``n``,
        ``median``, ``robust_std``, ``figure``; repeatability also by band,
        with every visit pair compared), and ``seconds``.
    """
    start = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    residuals: dict[str, list[np.ndarray]] = {}
    stars_by_visit: dict[tuple[str, str, int], list] = {}
    with Butler.from_config(repo, collections=list(collections)) as butler:
        data_ids = find_detectors(butler, where)
        if not data_ids:
            _LOG.warning("No calibrateImage outputs in %s (where %r).", ", ".join(collections), where)
        _LOG.info("Report on %d visit/detector(s) in %s.", len(data_ids), ", ".join(collections))
        for index, data_id in enumerate(data_ids):
            data = load_detector(butler, data_id)
            row = table_row(data)
            instrument = row["instrument"]
            residuals.setdefault(instrument, []).append(normalised_background_residuals(data.image))
            clean = data.stars[clean_point_sources(data.stars)]
            stars_by_visit.setdefault((instrument, row["band"], row["visit"]), []).append(
                clean[list(_REPEATABILITY_COLUMNS)]
            )
            if index < max_detectors:
                planes = f"{data.label}_planes.png"
                psf = f"{data.label}_psf.png"
                plot_planes(data, output / planes)
                stacked = psf_residuals(data.image, data.stars)
                plot_psf(stacked, f"{data.label} PSF", output / psf)
                row["psf_residuals"] = {
                    "selection": stacked.selection,
                    "n_stars": stacked.n_stars,
                    "max_abs_residual": finite_or_none(stacked.max_abs_residual),
                }
                row["figures"] = {"planes": planes, "psf": psf}
            rows.append(row)
        coadds = coadd_rows(butler, output)
    summary = {
        "repo": str(repo),
        "collections": list(collections),
        "where": where,
        "rows": rows,
        "coadds": coadds,
        "normalised_residuals": _residual_histograms(residuals, output),
        "repeatability": _repeatability_histograms(stars_by_visit, match_radius, output),
    }
    summary["seconds"] = round(time.perf_counter() - start, 2)
    (output / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    write_index(output / "index.html", summary)
    _LOG.info("Report written to %s in %.1f s.", output / "index.html", summary["seconds"])
    return summary


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
