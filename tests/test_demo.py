"""The worked example (bin/run_demo.sh, what `make demo` runs) with small
settings: every step runs, its report holds real numbers, and the tutorial
notebook (docs/tutorial.ipynb) runs on its repository."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.ipynb"
pytestmark = pytest.mark.slow


PATCH_CELLS = "17"
"""Inner cells a side of the test's skymap patches (the example's 20 make
3300-pixel patches, 17 make 2850-pixel ones: a quarter fewer pixels to warp,
coadd and measure): the fewest that keep the five visits of a 512-pixel
detector, 930 x 1350 tract pixels, off every neighbouring patch (so do 19
and 20; 13 and 15 put them on two patches, the other counts from 4 to 18 on
four or more), so that the test's three coadds with two, two and one inputs
stay as they are."""


def _run_demo(directory: Path) -> str:
    """Run the worked example on one 512-pixel VIRCAM detector, serially,
    on smaller patches."""
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DEMO_SIZE": "512",
        "DEMO_DETECTORS": "1",
        "DEMO_JOBS": "1",
        "DEMO_PATCH_CELLS": PATCH_CELLS,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "bin" / "run_demo.sh"), str(directory)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo") / "demo"
    return directory, _run_demo(directory)


def test_every_step_ran(demo):
    _, stdout = demo
    assert stdout.count("==> [") == 11
    assert "$ pipetask run" in stdout  # processCcd.py prints what it runs
    assert "Open " in stdout.splitlines()[-1]


def test_report_holds_real_numbers(demo):
    directory, _ = demo
    summary = json.loads((directory / "report" / "summary.json").read_text())
    rows = {(row["instrument"], row["visit"], row["detector"]): row for row in summary["rows"]}
    assert sum(key[0] == "VIRCAM" for key in rows) == 5 and sum(key[0] == "DECam" for key in rows) == 8
    assert {row["band"] for row in rows.values() if row["instrument"] == "VIRCAM"} == {"z", "y", "Ks"}
    for key, row in rows.items():
        for name in ("noise_ratio", "psf_fwhm", "header_fwhm", "sky_level", "sky_noise"):
            assert row[name] is not None and math.isfinite(row[name]), (key, name)
        assert row["n_sources"] > 0
        assert abs(row["psf_fwhm"] / row["header_fwhm"] - 1) < 0.15, key
    for key, row in rows.items():
        if key[0] == "VIRCAM":
            assert math.isfinite(row["zero_point"]) and row["astrometric_rms_mas"] < 100
    assert abs(summary["normalised_residuals"]["VIRCAM"]["robust_std"] - 1) < 0.1
    assert summary["repeatability"]["VIRCAM"]["n"] >= 5
    coadds = summary["coadds"]
    assert {row["band"] for row in coadds} == {"z", "y", "Ks"}
    for row in coadds:
        # Two visits in Z and Y, one in Ks; a 512-pixel detector covers part of the patch.
        assert row["n_inputs"] == (1 if row["band"] == "Ks" else 2) and 0 < row["covered_fraction"] < 1, row
        assert 0.5 < row["psf_fwhm_arcsec"] < 1.5 and 20 < row["depth_5sigma"] < 28, row
    html = (directory / "report" / "index.html").read_text()
    # The bundled DECam images are said to be cutouts around saturated stars; the VIRCAM ones are not.
    about = html[html.index('id="data"') : html.index('id="visit-maps"')]
    decam = next(line for line in about.splitlines() if "<b>DECam</b>" in line)
    vircam = next(line for line in about.splitlines() if "<b>VIRCAM</b>" in line)
    assert "cutouts" in decam and "saturated stars" in decam and "cutouts" not in vircam
    for key, row in rows.items():
        # A zero point gives a depth; without one the table says so instead.
        assert (row["depth_5sigma"] is None) == (row["zero_point"] is None), key
        if key[0] == "VIRCAM":
            assert 20 < row["depth_5sigma"] < 28 and 0.5 < row["psf_fwhm_arcsec"] < 1.5, key
    objects = summary["objects"]
    assert objects["bands"] == ["z", "y", "Ks"] and objects["n_objects"] > 20
    # Against the simulator's truth: every true source well above the coadds' noise is found,
    # and next to nothing is spurious.
    assert objects["completeness"]["n_true"] >= 10 and objects["completeness"]["fraction"] >= 0.9, objects
    assert objects["purity"]["fraction"] >= 0.9, objects
    # Both colours of the bright constant stars agree with their true ones, which spread over tenths
    # of a magnitude (2MASS-like colours through VIRCAM's colour terms); a handful of stars on a
    # 512-pixel detector, Ks on half of it: 0.05 mag.
    offsets = {entry["colour"]: entry for entry in objects["colour_offsets"]}
    assert list(offsets) == ["z-y", "y-Ks"], objects
    for entry in offsets.values():
        assert entry["n"] >= 3 and abs(entry["median"]) < 0.05 and entry["robust_std"] < 0.1, objects
    # The variable star's light curve follows the true one.
    curve = objects["light_curve"]
    assert curve["true_amplitude_mag"] > 0 and curve["bands"], objects
    for entry in curve["bands"].values():
        assert entry["n_visits"] == 2 and entry["chi2_per_point"] < 10, curve
        # Two epochs of a faint star: the measured change within 40% of the true one.
        assert abs(entry["range_ratio"] - 1) < 0.4, curve
    # The colour-colour diagram is drawn (three bands), with the stars' true colours.
    assert "colour–colour diagram" in html and "y-Ks median" in html
    for figure in (
        "repeatability_VIRCAM.png",
        "normalised_residuals_DECam.png",
        coadds[0]["figure"],
        objects["figure"],
        curve["figure"],
    ):
        assert figure in html and (directory / "report" / figure).stat().st_size > 1000


def test_rerun_is_safe(demo):
    directory, _ = demo
    rerun = _run_demo(directory)
    for step in (
        "repo already exists; reusing it",
        "u/demo/coadd already exists; reusing it",
        "u/demo/coadd already holds the objects outputs; reusing them",
        "u/demo/coadd already holds the step4 outputs; reusing them",
        "report already exists",
    ):
        assert step in rerun, step
    # Nothing is processed again: processCcd.py finds nothing to do, and no step runs pipetask.
    assert "$ pipetask run" not in rerun


def test_tutorial_notebook_runs(demo, monkeypatch):
    directory, _ = demo
    monkeypatch.setenv("OBS_VISTA_DEMO_REPO", str(directory / "repo"))
    notebook = nbformat.read(TUTORIAL, as_version=4)
    # The kernel is this interpreter (ipykernel's own "python3"), in the notebook's directory.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": TUTORIAL.parent}}
    ).execute()
    outputs = {
        index: "".join(output.get("text", "") for output in cell.outputs)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    # Five VIRCAM exposures of one detector, matched to their catalogue, and three coadds.
    assert text.count(" 1 z") + text.count(" 1 y") + text.count(" 1 Ks") == 5, text
    matches = re.search(r"(\d+) matches; median psfMag - G ([-+.\d]+) mag; rms offset ([.\d]+) mas", text)
    assert matches and int(matches[1]) >= 10 and abs(float(matches[2])) < 0.1 and float(matches[3]) < 100, (
        text
    )
    assert re.search(r"3 coadds; tract \d+ patch \d+ band Ks", text), text
    primary = re.search(r"(\d+) primary objects in bands ([\w, ]+);", text)
    assert primary and int(primary[1]) > 20 and set(primary[2].split(", ")) == {"z", "y", "Ks"}, text
    visits = re.search(r"objectId \d+: y_psfFlux \d+ nJy on the coadd, (\d+) visit measurements", text)
    assert visits and int(visits[1]) >= 2, text
    images = sum(
        1
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    )
    assert images == 3
