"""The report's static HTML page (no scripts, no remote resources)."""

from __future__ import annotations

__all__ = ("TABLE_COLUMNS", "write_index")

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("instrument", "instrument", ""),
    ("visit", "visit", ""),
    ("detector", "detector", ""),
    ("band", "band", ""),
    ("noise_ratio", "noise ratio (isr)", ".3f"),
    ("n_sources", "sources", ""),
    ("n_point_sources", "point sources", ""),
    ("psf_model", "PSF model", ""),
    ("n_psf_stars", "PSF stars", ""),
    ("psf_fwhm", "FWHM ours (pix)", ".3f"),
    ("header_fwhm", "FWHM header (pix)", ".3f"),
    ("zero_point", "ZP applied (AB)", ".3f"),
    ("zero_point_source", "ZP source", ""),
    ("zero_point_fit", "ZP fit (AB)", ".3f"),
    ("zero_point_scatter", "ZP scatter (mag)", ".3f"),
    ("n_astrometry_matches", "astrom. matches", ""),
    ("astrometric_offset_mas", "astrom. offset (mas)", ".1f"),
    ("astrometric_rms_mas", "astrom. rms (mas)", ".1f"),
    ("sky_level", "sky level", ".2f"),
    ("sky_noise", "sky noise", ".3f"),
    ("unit", "unit", ""),
)
"""(row key, column heading, format) of the table per visit and detector."""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 1500px; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #eee; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.85em; max-width: 60em; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


def write_index(path: Path, summary: dict[str, Any]) -> None:
    """Write ``index.html`` from the report summary.

    Parameters
    ----------
    path : `pathlib.Path`
        File to write.
    summary : `dict`
        What `lsst.obs.vista.report.make_report` returns (figure paths
        relative to the page).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>calibrateImage report</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Single-frame processing report</h1>",
        f'<p class="note">Repository {_text(summary["repo"])}, collections '
        f"{_text(', '.join(summary['collections']))}"
        + (f", where {_text(summary['where'])}" if summary["where"] else "")
        + f"; {len(summary['rows'])} visit/detector(s). Numbers in summary.json.</p>",
        "<h2>Per visit and detector</h2>",
        _table(summary["rows"])
        if summary["rows"]
        else "<p><b>No preliminary_visit_image with its single_visit_star in these collections.</b></p>",
        '<p class="note">Noise ratio: isr\'s robust background noise over the predicted sigma. '
        "FWHM ours: second moments of the PSF model at the detector centre; header: the CP FWHM or CASU "
        "SEEING card. ZP: AB magnitude of one image unit, from the header calibration or fitted to "
        "reference stars. Sky level and noise in image units.</p>",
        "<h2>Normalised residuals of background pixels</h2>",
        *_histogram_section(summary["normalised_residuals"], _residual_caption),
        "<h2>Multi-epoch repeatability</h2>",
        *_histogram_section(summary["repeatability"], _repeatability_caption),
        *_coadd_section(summary.get("coadds", [])),
        "<h2>Per detector</h2>",
    ]
    shown = [row for row in summary["rows"] if row.get("figures")]
    if len(shown) < len(summary["rows"]):
        parts.append(
            f'<p class="note">The first {len(shown)} of {len(summary["rows"])} (--max-detectors).</p>'
        )
    for row in shown:
        label = f"{row['instrument']} visit {row['visit']} detector {row['detector']} ({row['band']})"
        psf = row["psf_residuals"]
        parts.append(f"<h3>{_text(label)}</h3>")
        parts.append(
            _figure(
                row["figures"]["planes"],
                "Background-subtracted image with detections (circles: point sources, squares: extended, "
                "large red circles: PSF stars), mask planes, variance.",
            )
        )
        parts.append(
            _figure(
                row["figures"]["psf"],
                f"PSF model ({_text(row['psf_model'])}) at the centre; median of {psf['n_stars']} stamps of "
                f"{_text(psf['selection'])} and of their residuals from the model scaled to each star "
                f"(largest |median residual| {_format(psf['max_abs_residual'], '.3f')} of the peak).",
            )
        )
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n")


def _coadd_section(coadds: Sequence[dict[str, Any]]) -> list[str]:
    """The coadds' table and figures (nothing when there are none)."""
    if not coadds:
        return []
    header = (
        "skymap",
        "tract",
        "patch",
        "band",
        "inputs",
        "covered",
        "PSF FWHM (\u2033)",
        "5\u03c3 depth (AB)",
        "partial cells",
        "clipped pixels",
    )
    parts = [
        "<h2>Coadds (deep_coadd)</h2>",
        "<table><tr>" + "".join(f"<th>{_text(h)}</th>" for h in header) + "</tr>",
    ]
    for row in coadds:
        cells = (
            row["skymap"], row["tract"], row["patch"], row["band"], row["n_inputs"],
            _format(row["covered_fraction"], ".0%"), _format(row["psf_fwhm_arcsec"], ".2f"),
            _format(row["depth_5sigma"], ".2f"), row["partial_cells"], row["clipped_pixels"],
        )  # fmt: skip
        parts.append("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    parts.append(
        '<p class="note">Inputs: visits coadded into the patch. Covered: pixels with data. PSF FWHM: '
        "second moments of the cell PSF, median over cells. Depth: flux of a point source at 5 sigma of its "
        "PSF flux error, measured on the coadd's noise realisation (so including the pixel covariance "
        "resampling adds), "
        "median over fully covered cells. Partial cells: cells no input covers whole (their PSF is a "
        "coverage-weighted mix). Clipped: input pixels left out as artefacts of one visit.</p>"
    )
    for row in coadds:
        if row.get("figure"):
            parts.append(
                _figure(
                    row["figure"],
                    f"tract {row['tract']} patch {row['patch']} band {_text(row['band'])}: image, inverse "
                    "variance, inputs per pixel, PSF FWHM per cell.",
                )
            )
    return parts


def _table(rows: Sequence[dict[str, Any]]) -> str:
    header = "".join(f"<th>{_text(title)}</th>" for _, title, _ in TABLE_COLUMNS)
    body = [
        "<tr>"
        + "".join(f"<td>{_format(row.get(key), spec)}</td>" for key, _, spec in TABLE_COLUMNS)
        + "</tr>"
        for row in rows
    ]
    return "<table><tr>" + header + "</tr>\n" + "\n".join(body) + "</table>"


def _histogram_section(groups: dict[str, dict[str, Any]], caption) -> list[str]:
    if not groups:
        return ['<p class="note">No data.</p>']
    parts = []
    for instrument, group in groups.items():
        if group.get("figure"):
            parts.append(_figure(group["figure"], caption(instrument, group)))
        else:
            parts.append(f"<p>{caption(instrument, group)}</p>")
    return parts


def _residual_caption(instrument: str, group: dict[str, Any]) -> str:
    return (
        f"{_text(instrument)}: image / sqrt(variance) of {group['n']} background pixels (no mask plane set, "
        f"not DETECTED) of {group['n_detectors']} background-subtracted exposure(s); robust std "
        f"{_format(group['robust_std'], '.3f')}, median {_format(group['median'], '.3f')}; "
        "N(0, 1) overlaid."
    )


def _repeatability_caption(instrument: str, group: dict[str, Any]) -> str:
    text = [
        f"{_text(instrument)}: (f<sub>i</sub> − f<sub>j</sub>) / sqrt(σ<sub>i</sub>² + σ<sub>j</sub>²) of "
        f"psfFlux for clean point sources matched within {group['radius_arcsec']:g} arcsec between "
        "different visits of the same band."
    ]
    if group["n"] == 0:
        text.append("<b>No pairs</b>.")
    else:
        text.append(f"{group['n']} pairs, robust std {_format(group['robust_std'], '.3f')}.")
    for band, entry in group["bands"].items():
        pairs = entry["visit_pairs"]
        if not pairs:
            text.append(f"Band {_text(band)}: a single visit, nothing to compare.")
            continue
        details = "; ".join(
            f"visits {first}/{second}: {pair['n_matched']} matched, {_text(pair['note'])}"
            for pair in pairs
            for first, second in [pair["visits"]]
        )
        text.append(
            f"Band {_text(band)}: {entry['n']} pairs, robust std {_format(entry['robust_std'], '.3f')} "
            f"({details})."
        )
    if group["instrumental"]:
        text.append(
            "<b>Visits without a zero point (NaN nJy fluxes) are compared in instrumental fluxes normalised "
            "by the median flux ratio of their matched pairs</b>, which removes one degree of freedom."
        )
    return " ".join(text)


def _figure(source: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(source, quote=True)}" alt="{html.escape(source, quote=True)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _format(value: Any, spec: str) -> str:
    if value is None:
        return "–"
    if spec and isinstance(value, (int, float)):
        return format(value, spec)
    return _text(value)


def _text(value: Any) -> str:
    return html.escape(str(value))
