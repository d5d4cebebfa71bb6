"""The report's static HTML page (no scripts, no remote resources)."""

from __future__ import annotations

__all__ = ("TABLE_COLUMNS", "detector_anchor", "write_index")

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("instrument", "instrument", ""),
    ("visit", "visit", ""),
    ("detector", "detector", ""),
    ("band", "band", ""),
    ("size", "pixels", ""),
    ("noise_ratio", "noise ratio (isr)", ".3f"),
    ("n_sources", "sources", ""),
    ("n_point_sources", "point sources", ""),
    ("psf_model", "PSF model", ""),
    ("n_psf_stars", "PSF stars", ""),
    ("psf_fwhm_arcsec", "FWHM ours (″)", ".2f"),
    ("psf_fwhm", "FWHM ours (pix)", ".2f"),
    ("header_fwhm_arcsec", "FWHM header (″)", ".2f"),
    ("zero_point", "ZP applied (AB)", ".3f"),
    ("zero_point_source", "ZP source", ""),
    ("zero_point_fit", "ZP fit (AB)", ".3f"),
    ("zero_point_offset", "ZP fit − header (mag)", "+.3f"),
    ("zero_point_scatter", "ZP scatter (mag)", ".3f"),
    ("n_astrometry_matches", "astrom. matches", ""),
    ("astrometric_offset_mas", "astrom. offset (mas)", ".1f"),
    ("astrometric_rms_mas", "astrom. rms (mas)", ".1f"),
    ("sky_level", "sky level", ".2f"),
    ("sky_noise", "sky noise", ".3f"),
    ("unit", "unit", ""),
    ("depth_5sigma", "5σ depth (AB)", ".2f"),
)
"""(row key, column heading, format) of the table per visit and detector."""

_CUTOUT_PIXELS = 250_000
"""Images with fewer pixels (500 x 500) are cutouts, not whole detectors:
the smallest detector of the supported cameras has 2k x 2k pixels."""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 1500px; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #eee; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure.third { width: 31%; }
figure.half { width: 47%; }
figcaption { font-size: 0.85em; max-width: 60em; }
img { max-width: 100%; }
figure img { width: 100%; }
.note { color: #555; font-size: 0.9em; }
.missing { color: #b00000; }
a.top { font-size: 0.55em; font-weight: normal; margin-left: 1em; }
nav .index { font-size: 0.85em; margin: 0.3em 0 0.3em 0; }
table.meta th { text-align: left; }
table.meta td { text-align: left; }
table.meta ul { margin: 0; padding-left: 1.2em; }
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
    rows = summary["rows"]
    shown = [row for row in rows if row.get("figures")]
    sections = [
        ("provenance", "How this report was made"),
        ("table", "Per visit and detector"),
        ("data", "About the data"),
        ("visit-maps", "Visit maps: FWHM, zero point, sky"),
        ("residuals", "Normalised residuals of background pixels"),
        ("repeatability", "Multi-epoch repeatability"),
        *([("coadds", "Coadds (deep_coadd)")] if summary.get("coadds") else []),
        *([("objects", "Objects")] if summary.get("objects") else []),
        ("detectors", "Per detector"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>calibrateImage report</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Single-frame processing report</h1>",
        f'<p class="note">{len(rows)} visit/detector(s) of {_text(", ".join(summary["collections"]))}; '
        f"generated {_text(summary['generated'])} by {_text(summary['package'])} "
        f'{_text(summary["version"])}. Numbers in <a href="summary.json">summary.json</a>. '
        "Every figure links to its full-resolution PNG.</p>",
        '<nav id="contents"><h2>Contents</h2><ol>',
        *(
            f'<li><a href="#{anchor}">{_text(title)}</a>'
            + (_detector_index(shown) if anchor == "detectors" else "")
            + "</li>"
            for anchor, title in sections
        ),
        "</ol></nav>",
        _section("provenance", "How this report was made"),
        _provenance(summary),
        _section("table", "Per visit and detector"),
        _table(rows)
        if rows
        else "<p><b>No preliminary_visit_image with its single_visit_star in these collections.</b></p>",
        "<p class=\"note\">Detector: links to its figures. Pixels: the image's size. Noise ratio: isr's "
        "robust background noise over the predicted sigma. FWHM ours: second moments of the PSF model at the "
        "detector centre, in arcsec (the WCS's pixel scale there) and pixels; header: the CP FWHM or CASU "
        "SEEING card. ZP: AB magnitude of one image unit, from the header calibration or fitted to reference "
        "stars; <b>source none</b>: no zero point is known, so the calibrated fluxes (nJy) are NaN and the "
        "image metadata says PHOTOCAL_SOURCE=none. Sky level and noise in image units. 5σ depth: the AB "
        "magnitude of a point source measured at 5σ by its PSF flux on the sky noise, "
        "ZP − 2.5 log10(5 · c · sky noise · sqrt(NEA)) with the noise-equivalent area NEA = 1 / Σ p² of the "
        "PSF model p (normalised to 1) at the centre and c the factor by which correlated noise raises "
        "PSF-flux errors (NOISE_CORR_PSF, a stack's resampling); none without a zero point.</p>",
        _section("data", "About the data"),
        *_about_data(rows),
        _section("visit-maps", "Visit maps: FWHM, zero point, sky"),
        *(
            [
                _figure(
                    entry["figure"],
                    f"{_text(entry['instrument'])} visit {entry['visit']} (band {_text(entry['band'])}): its "
                    f"{entry['n_detectors']} detector(s) on the sky (their WCS corners, east left), coloured "
                    "by PSF FWHM, zero point and sky level; grey: not measured.",
                    "third",
                )
                for entry in summary.get("visit_maps", [])
            ]
            or ['<p class="note">No data.</p>']
        ),
        _section("residuals", "Normalised residuals of background pixels"),
        *_histogram_section(summary["normalised_residuals"], _residual_caption),
        _section("repeatability", "Multi-epoch repeatability"),
        *_histogram_section(summary["repeatability"], _repeatability_caption),
        *_coadd_section(summary.get("coadds", [])),
        *_object_section(summary.get("objects")),
        _section("detectors", "Per detector"),
    ]
    if len(shown) < len(rows):
        parts.append(f'<p class="note">The first {len(shown)} of {len(rows)} (--max-detectors).</p>')
    for row in shown:
        parts.extend(_detector_section(row))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n")


def detector_anchor(row: dict[str, Any]) -> str:
    """Return the page anchor of a visit and detector's figures.

    Parameters
    ----------
    row : `dict`
        Its table row.

    Returns
    -------
    anchor : `str`
        ``<instrument>-<visit>-<detector>``.
    """
    return f"{row['instrument']}-{row['visit']}-{row['detector']}"


def _section(anchor: str, title: str) -> str:
    return f'<h2 id="{anchor}">{_text(title)} <a class="top" href="#contents">↑ contents</a></h2>'


def _detector_index(shown: Sequence[dict[str, Any]]) -> str:
    if not shown:
        return ""
    links = (
        f'<a href="#{detector_anchor(row)}">{_text(row["instrument"])} {row["visit"]}/{row["detector"]}</a>'
        for row in shown
    )
    return '<div class="index">' + " · ".join(links) + "</div>"


def _provenance(summary: dict[str, Any]) -> str:
    options = ", ".join(f"{key} = {value}" for key, value in summary["options"].items())
    configs = summary.get("configs", {})
    config_items = "".join(
        f"<li>{_text(run)}: "
        + (f'<a href="{html.escape(name, quote=True)}">{_text(name)}</a>' if name else "not saved in the run")
        + "</li>"
        for run, name in configs.items()
    )
    lines = [
        ("generated", f"{summary['generated']} (UTC)"),
        ("package", f"{summary['package']} {summary['version']}"),
        ("repository", summary["repo"]),
        ("collections", ", ".join(summary["collections"])),
        ("where", summary["where"] or "(everything)"),
        ("report options", options),
    ]
    return (
        '<table class="meta">'
        + "".join(f"<tr><th>{_text(key)}</th><td>{_text(value)}</td></tr>" for key, value in lines)
        + "<tr><th>calibrateImage config</th><td>"
        + (f"<ul>{config_items}</ul>" if config_items else "none read")
        + "</td></tr></table>"
    )


def _about_data(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Say which images are cutouts, so that their numbers read right."""
    parts = []
    by_instrument: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_instrument.setdefault(row["instrument"], []).append(row)
    for instrument, members in by_instrument.items():
        sizes = sorted({(row["width"], row["height"]) for row in members})
        largest = max(width * height for width, height in sizes)
        text = (
            f"<b>{_text(instrument)}</b>: {len(members)} visit/detector(s), images of "
            + ", ".join(f"{width}×{height}" for width, height in sizes)
            + " pixels."
        )
        if largest < _CUTOUT_PIXELS:
            saturated = [row["saturated_fraction"] for row in members if row.get("saturated_fraction")]
            text += (
                f" These are <b>cutouts</b>, not whole detectors (fewer than {_CUTOUT_PIXELS:,} pixels)"
                + (
                    f"; {len(saturated)} of them hold saturated pixels (up to {max(saturated):.1%} of the "
                    "image): tiny fields around bright, saturated stars"
                    if saturated
                    else ""
                )
                + ". The DECam Community Pipeline images bundled with the worked example are such cutouts, "
                "made by the Legacy Surveys for their pipeline's tests. Read their numbers accordingly: few "
                "stars for the PSF model and the zero point (the header's, or none), sky noise and depth "
                "from a small area that a bright star's wings cover, and flagged pixels a large part of "
                "the image."
            )
        parts.append(f"<p>{text}</p>")
    return parts or ['<p class="note">No data.</p>']


def _detector_section(row: dict[str, Any]) -> list[str]:
    label = f"{row['instrument']} visit {row['visit']} detector {row['detector']} ({row['band']})"
    psf = row["psf_residuals"]
    reference = row["reference"]
    figures = row["figures"]
    return [
        f'<h3 id="{detector_anchor(row)}">{_text(label)} <a class="top" href="#table">↑ table</a></h3>',
        _figure(
            figures["planes"],
            "Background-subtracted image with detections (circles: point sources, squares: extended, "
            "large red circles: PSF stars), mask planes, variance. "
            f'<a href="{html.escape(figures["image"], quote=True)}">The image at full resolution</a> '
            "(one PNG pixel per pixel, zscale).",
        ),
        _figure(
            figures["psf"],
            f"PSF model ({_text(row['psf_model'])}) at the centre; median of {psf['n_stars']} stamps of "
            f"{_text(psf['selection'])} and of their residuals from the model scaled to each star "
            f"(largest |median residual| {_format(psf['max_abs_residual'], '.3f')} of the peak).",
            "half",
        ),
        _figure(
            figures["catalog"],
            f"Against the reference catalogue ({_text(reference['catalog'])}; {_text(reference['note'])}): "
            "astrometric residuals (source − reference, mas) as whiskers at each star's position, rms "
            f"{_format(reference['astrometric_rms_mas'], '.1f')} mas; PSF magnitude minus the reference "
            f"magnitude ({_text(reference['magnitude'] or 'none matched')}) against the latter, median "
            f"{_format(reference['photometric_median'], '+.3f')} mag. PSF ellipticity whiskers (length |e|, "
            "along the major axis) of the model on a grid and of the PSF stars as measured, mean model |e| "
            f"{_format(row['psf_ellipticity'], '.3f')}. Size (second-moment FWHM) against magnitude: stars "
            "on the horizontal locus at the PSF's size, galaxies above it.",
            "half",
        ),
    ]


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
        _section("coadds", "Coadds (deep_coadd)"),
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


def _object_section(objects: dict[str, Any] | None) -> list[str]:
    """The objects' numbers and figures (nothing without an object table)."""
    if not objects:
        return []
    depth = ", ".join(
        f"{_text(band)} {_format(value, '.2f')}" for band, value in objects["depth_5sigma"].items()
    )
    text = [
        f"{objects['n_objects']} primary objects (detect_isPrimary) in bands "
        f"{_text(', '.join(objects['bands']))}; "
        f"{_format(objects['extended_fraction'], '.0%')} extended (refExtendedness), "
        f"{_format(objects['deblended_fraction'], '.0%')} deblended children. Coadd 5σ depth (AB): {depth}."
    ]
    completeness = objects.get("completeness")
    if completeness:
        purity = objects["purity"]
        text.append(
            f"Against the simulator's truth: {completeness['n_found']} of {completeness['n_true']} true "
            f"sources with S/N ≥ {completeness['snr_min']:g} found (completeness "
            f"{_format(completeness['fraction'], '.1%')}; {completeness['n_found_all']} of "
            f"{completeness['n_true_all']} at any S/N); {purity['n_matched']} of {purity['n_objects']} "
            f"objects have a true source (purity {_format(purity['fraction'], '.1%')})."
        )
    offsets = [entry for entry in objects.get("colour_offsets", []) if entry["n"]]
    if offsets:
        text.append(
            f"Colours of the constant stars with S/N ≥ {offsets[0]['snr_min']:g}, measured − true: "
            + "; ".join(
                f"{_text(entry['colour'])} median {_format(entry['median'], '+.3f')} mag, robust std "
                f"{_format(entry['robust_std'], '.3f')} ({entry['n']} stars)"
                for entry in offsets
            )
            + "."
        )
    parts = [
        _section("objects", "Objects"),
        f"<p>{' '.join(text)}</p>",
        _figure(
            objects["figure"],
            "Colour–magnitude diagram (PSF fluxes; point-like and extended by refExtendedness); "
            "colour–colour diagram with three bands or more (crosses, given the truth: the true colours of "
            "the stars whose colours are compared above; with two bands, the colour's error against the "
            "truth); number counts per band against the coadd's 5σ depth (dashed: the true sources on "
            "the coadds); completeness against the true S/N (mean flux over the coadd's local PSF-flux "
            "error, in the best band). "
            "Objects and true sources match within the match radius.",
        ),
    ]
    curve = objects.get("light_curve")
    if curve:
        details = "; ".join(
            f"{_text(band)}: {entry['n_visits']} visits, measured range "
            f"{_format(entry['measured_range_njy'], '.0f')} nJy for a true "
            f"{_format(entry['true_range_njy'], '.0f')} nJy (ratio {_format(entry['range_ratio'], '.2f')}), "
            f"mean χ² per point {_format(entry['chi2_per_point'], '.2f')}"
            for band, entry in curve["bands"].items()
        )
        parts.append(
            _figure(
                curve["figure"],
                "Light curve of the brightest detected variable star (objectId "
                f"{curve['objectId']}, true source {curve['true_id']}): forced PSF fluxes on the visits "
                "(object_forced_source) and the true "
                f"sinusoid of semi-amplitude {curve['true_amplitude_mag']:.2f} mag. {details}.",
                "half",
            )
        )
    return parts


def _table(rows: Sequence[dict[str, Any]]) -> str:
    header = "".join(f"<th>{_text(title)}</th>" for _, title, _ in TABLE_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _, spec in TABLE_COLUMNS:
            if key == "size":
                text = f"{row['width']}×{row['height']}"
            else:
                text = _format(row.get(key), spec)
            if key == "detector" and row.get("figures"):
                text = f'<a href="#{detector_anchor(row)}">{text}</a>'
            if key == "zero_point_source" and row.get(key) == "none":
                text = f'<b class="missing">{text}</b>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="rows"><tr>' + header + "</tr>\n" + "\n".join(body) + "</table>"


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


def _figure(source: str, caption: str, size: str = "") -> str:
    """A figure linked to its PNG; ``size`` a CSS class (``third``, ``half``)."""
    link = html.escape(source, quote=True)
    css = f' class="{size}"' if size else ""
    return (
        f'<figure{css}><a href="{link}"><img src="{link}" alt="{link}" loading="lazy"></a>'
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
