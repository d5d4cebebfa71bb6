"""The worked example's report (``butler make-report``, also run as
``python -m lsst.obs.vista.report``) on a real
SQLite repository: two synthetic VIRCAM stacks of one field (tile offsets 1
and 3, which share half of detector 1), ingested and run through the VIRCAM
ProcessCcd pipeline with pipetask against their Gaia-like catalogue."""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import PIL.Image
import pytest
from lsst.daf.butler import Butler

import lsst.obs.vista  # noqa: F401  (VIRCAM translator, needed to read the outputs)
from commands import BIN, invoke, run, simulate
from lsst.obs.vista.provenance import package_version
from lsst.obs.vista.report import (
    DEPTH_SIGMA,
    MIN_NORMALISATION_PAIRS,
    clean_point_sources,
    make_report,
    match_visit_pair,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = "u/test/report"
SIM = ("--size", "512", "--detectors", "1", "--seed", "7")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data, repo = root / "data", root / "repo"
    refcat = root / "gaia.fits"
    simulate(data, "--stacks", "1", *SIM, "--refcat", refcat)
    simulate(data, "--stacks", "1", "--first-index", "2", *SIM)
    invoke("butler", "create", "--seed-config", REPO_ROOT / "config/butler/seed.yaml", repo)
    invoke("butler", "ingest-casu", repo, data, "--transfer", "symlink")
    invoke("butler", "ingest-refcat", repo, "gaia_dr3", refcat)
    invoke(
        "pipetask", "run", "-b", repo, "-i", "VIRCAM/defaults,refcats/gaia_dr3", "-o", OUTPUT,
        "-p", REPO_ROOT / "pipelines/VIRCAM/ProcessCcd.yaml", "--register-dataset-types", "-j", "1",
    )  # fmt: skip
    return repo


@pytest.fixture(scope="module")
def report(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("html")
    result = run(BIN / "butler", "make-report", repo, "--collections", OUTPUT, "-o", output)
    assert "index.html" in result.stdout
    return output, json.loads((output / "summary.json").read_text())


@pytest.mark.parametrize(
    "command", [(BIN / "butler", "make-report"), (sys.executable, "-m", "lsst.obs.vista.report")]
)
def test_help_names_the_arguments(command: tuple) -> None:
    result = run(*command, "--help")
    arguments = (
        "REPO",
        "--collections",
        "-o, --output",
        "--where",
        "--max-detectors",
        "--match-radius",
        "--truth",
    )
    for argument in arguments:
        assert argument in result.stdout


def test_index_references_existing_figures(report: tuple[Path, dict]) -> None:
    output, summary = report
    page = (output / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    # Per detector: planes, PSF and catalogue figures; per visit a map; one residual and one
    # repeatability histogram.
    assert len(sources) == 3 * len(summary["rows"]) + len(summary["visit_maps"]) + 2
    assert len(summary["visit_maps"]) == 2
    for source in sources:
        path = output / source
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", source
        # Each figure is one click from its full-resolution file.
        assert f'<a href="{source}"><img src="{source}"' in page
    assert "http" not in page and "<script" not in page


def test_every_link_resolves(report: tuple[Path, dict]) -> None:
    output, summary = report
    page = (output / "index.html").read_text()
    anchors = set(re.findall(r'id="([^"]+)"', page))
    links = re.findall(r'href="([^"]+)"', page)
    for link in links:
        if link.startswith("#"):
            assert link[1:] in anchors, link
        else:
            assert (output / link).is_file(), link
    # The contents list every section, and the table links every detector drawn to its figures.
    contents = page[page.index('<nav id="contents">') : page.index("</nav>")]
    for section in ("provenance", "table", "data", "visit-maps", "residuals", "repeatability", "detectors"):
        assert f'href="#{section}"' in contents and f'id="{section}"' in page
    table = page[page.index('<table class="rows">') :]
    table = table[: table.index("</table>")]
    for row in summary["rows"]:
        anchor = f"{row['instrument']}-{row['visit']}-{row['detector']}"
        assert f'href="#{anchor}"' in table and f'href="#{anchor}"' in contents


def test_full_resolution_image_has_the_detector_size(report: tuple[Path, dict]) -> None:
    output, summary = report
    for row in summary["rows"]:
        with PIL.Image.open(output / row["figures"]["image"]) as image:
            assert image.size == (row["width"], row["height"]) and image.mode == "L"


def test_page_says_how_it_was_made(report: tuple[Path, dict], repo: Path) -> None:
    output, summary = report
    page = (output / "index.html").read_text()
    generated = datetime.datetime.fromisoformat(summary["generated"])
    assert abs(datetime.datetime.now(datetime.UTC) - generated) < datetime.timedelta(hours=1)
    assert summary["version"] == package_version() and summary["version"] in page
    assert summary["generated"] in page and OUTPUT in page
    (config_file,) = set(summary["configs"].values())
    # The config the task ran with, as saved in the run: gaia_dr3 is its reference catalogue.
    assert "config.connections.astrometry_ref_cat='gaia_dr3'" in (output / config_file).read_text()
    assert f'href="{config_file}"' in page


def test_table_rows_hold_measured_numbers(report: tuple[Path, dict]) -> None:
    _, summary = report
    rows = summary["rows"]
    assert [(row["instrument"], row["detector"]) for row in rows] == [("VIRCAM", 1), ("VIRCAM", 1)]
    assert len({row["visit"] for row in rows}) == 2
    for row in rows:
        assert row["band"] == "z"
        assert row["width"] >= 512 and row["height"] >= 512  # the stack of jittered exposures is larger
        assert 0.8 < row["noise_ratio"] < 1.2
        assert row["n_sources"] > 0 and row["n_point_sources"] > 0
        # The header SEEING and our PSF model describe the same stars.
        assert row["psf_fwhm"] == pytest.approx(row["header_fwhm"], rel=0.1)
        # VIRCAM's pixels are 0.34 arcsec.
        assert row["psf_fwhm_arcsec"] == pytest.approx(row["psf_fwhm"] * 0.34, rel=0.03)
        assert row["zero_point_source"] in ("header", "fit")  # VIRCAM always has one
        # Fitted minus header where both are known (gaia_dr3 alone: no VIRCAM fit).
        assert (row["zero_point_offset"] is None) == (row["zero_point_fit"] is None)
        assert 20 < row["zero_point"] < 35
        assert row["sky_noise"] > 0 and math.isfinite(row["sky_level"])
        assert row["psf_residuals"]["n_stars"] > 0
        assert row["psf_residuals"]["max_abs_residual"] < 0.5
        assert len(row["corners"]) == 4


def test_depth_agrees_with_the_catalogue_errors(report: tuple[Path, dict], repo: Path) -> None:
    """The 5-sigma depth from the sky noise and the PSF model against the
    PSF-flux errors of the faint point sources, which the measurement takes
    from the variance plane: 5 times their median error is the flux at
    5 sigma."""
    _, summary = report
    with Butler.from_config(repo, collections=[OUTPUT]) as butler:
        for row in summary["rows"]:
            stars = butler.get("single_visit_star", visit=row["visit"], detector=row["detector"])
            stars = stars[clean_point_sources(stars)]
            flux, error = np.asarray(stars["psfFlux"]), np.asarray(stars["psfFluxErr"])
            faint = (flux / error > 5) & (flux / error < 30)  # sky noise dominates their errors
            assert faint.sum() >= 10
            independent = (DEPTH_SIGMA * np.median(error[faint]) * u.nJy).to_value(u.ABmag)
            assert row["depth_5sigma"] == pytest.approx(independent, abs=0.1), row["depth_5sigma"]


def test_residuals_against_the_reference_catalogue(report: tuple[Path, dict]) -> None:
    """The synthetic catalogue (of the first stack's stars) holds each star's AB magnitude in G,
    with no error: our PSF magnitudes match it and our positions match to
    the centroid errors."""
    output, summary = report
    for row in summary["rows"]:
        reference = row["reference"]
        assert reference["catalog"] == "gaia_dr3" and reference["n_matches"] >= 5
        assert abs(reference["photometric_median"]) < 0.02
        assert reference["astrometric_rms_mas"] < 100
        assert "no colour term for band z" in reference["magnitude"]
        assert 0 <= row["psf_ellipticity"] < 0.1
    page = (output / "index.html").read_text()
    assert (
        "astrometric residuals" in page and "ellipticity whiskers" in page and "Size (second-moment" in page
    )


def test_normalised_residuals_are_unit_gaussian(report: tuple[Path, dict]) -> None:
    _, summary = report
    residuals = summary["normalised_residuals"]["VIRCAM"]
    assert residuals["n_detectors"] == 2
    assert residuals["n"] > 100_000
    assert abs(residuals["median"]) < 0.1
    assert residuals["robust_std"] == pytest.approx(1.0, abs=0.1)


def test_repeatability_pairs_the_two_stacks(report: tuple[Path, dict]) -> None:
    output, summary = report
    repeatability = summary["repeatability"]["VIRCAM"]
    (pair,) = repeatability["bands"]["z"]["visit_pairs"]
    assert pair["flux"] == "nJy"
    assert repeatability["n"] == pair["n_pairs"] > 0
    assert math.isfinite(repeatability["robust_std"])
    assert (output / repeatability["figure"]).exists()
    assert f"{repeatability['n']} pairs" in (output / "index.html").read_text()


def test_one_visit_reports_no_pairs(repo: Path, tmp_path: Path) -> None:
    with Butler.from_config(repo, collections=[OUTPUT]) as butler:
        visit = min(ref.dataId["visit"] for ref in butler.query_datasets("single_visit_star"))
    summary = make_report(repo, [OUTPUT], tmp_path, where=f"visit = {visit}", max_detectors=0)
    assert len(summary["rows"]) == 1 and "figures" not in summary["rows"][0]
    assert summary["options"]["max_detectors"] == 0 and summary["where"] == f"visit = {visit}"
    repeatability = summary["repeatability"]["VIRCAM"]
    assert repeatability["n"] == 0 and repeatability["figure"] is None
    assert repeatability["bands"]["z"]["visit_pairs"] == []
    assert "No pairs" in (tmp_path / "index.html").read_text()


def test_a_config_saved_by_another_version_is_named_and_skipped(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ``calibrateImage_config`` naming a field this version lacks (one
    renamed since it was saved) does not stop the report: it says so and
    leaves out what needs the config (the reference comparison)."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    with Butler.from_config(copy, collections=[OUTPUT]) as butler:
        path = Path(butler.getURI("calibrateImage_config").ospath)
    # The first field's name made unknown, at the same length (the datastore checks file sizes).
    text = path.read_text()
    start = text.index("\nconfig.") + len("\nconfig.")
    end = min(text.index(c, start) for c in "=." if c in text[start:])
    path.write_text(text[:start] + "x" * (end - start) + text[end:])
    with caplog.at_level("WARNING", logger="lsst.obs.vista.report"):
        summary = make_report(copy, [OUTPUT], tmp_path / "report", max_detectors=1)
    assert len(summary["rows"]) == 2
    assert any("does not load in this version" in record.getMessage() for record in caplog.records)


def test_collection_without_outputs_says_so(repo: Path, tmp_path: Path) -> None:
    summary = make_report(repo, ["VIRCAM/defaults"], tmp_path)
    assert summary["rows"] == [] and summary["repeatability"] == {}
    assert "No preliminary_visit_image" in (tmp_path / "index.html").read_text()


def test_uncalibrated_visit_falls_back_to_normalised_instrumental_fluxes(repo: Path) -> None:
    with Butler.from_config(repo, collections=[OUTPUT]) as butler:
        refs = sorted(butler.query_datasets("single_visit_star"), key=lambda ref: ref.dataId["visit"])
        first, second = (butler.get(ref) for ref in refs)
    first, second = first[clean_point_sources(first)], second[clean_point_sources(second)]
    visits = (refs[0].dataId["visit"], refs[1].dataId["visit"])
    calibrated = match_visit_pair(first, second, visits, 1.0 * u.arcsec)
    # The second visit as a CCD without a zero point (NaN nJy) and twice the instrumental flux.
    second["psfFlux"] = np.nan
    second["psfInstFlux"] *= 2.0
    second["psfInstFluxErr"] *= 2.0
    fallback = match_visit_pair(first, second, visits, 1.0 * u.arcsec)
    assert fallback.n_matched == calibrated.n_matched
    if calibrated.n_matched < MIN_NORMALISATION_PAIRS:
        assert fallback.flux == "none" and fallback.deltas.size == 0
        assert "needed to normalise" in fallback.note
    else:
        assert fallback.flux == "instrumental" and "median flux ratio" in fallback.note
        assert fallback.ratio == pytest.approx(0.5, rel=0.1)
        assert fallback.deltas.size == calibrated.deltas.size and np.isfinite(fallback.deltas).all()
