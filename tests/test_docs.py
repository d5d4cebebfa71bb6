"""The documentation: the README's defaults against the code, the Gaia query
example against the reference schema, and a ``sphinx-build -W`` of ``docs/``
whose generated reference pages hold what the code defines."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pytest
import yaml
from astropy.table import Table
from lsst.daf.butler import Config
from lsst.pipe.base import Pipeline

from conftest import SERIAL_OUTPUT
from lsst.obs.vista import DecamCpIsrTask, VistaIsrTask
from lsst.obs.vista.cli.commands import ingest_command
from lsst.obs.vista.cli.process_ccd import process_ccd
from lsst.obs.vista.refcat.schema import GAIA_COLUMNS, standardize_columns

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


def _readme_says(*phrases: str) -> None:
    """Assert that the README holds each phrase, whitespace and line breaks
    aside."""
    text = " ".join(README.split())
    for phrase in phrases:
        assert " ".join(phrase.split()) in text, f"README.md no longer says {phrase!r}"


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, Any]]:
    """The task configs of each instrument's ProcessCcd pipeline, with the
    instrument's and the pipeline's overrides applied, as pipetask sees them."""
    result = {}
    for instrument in ("VIRCAM", "DECam"):
        graph = Pipeline.from_uri(str(ROOT / "pipelines" / instrument / "ProcessCcd.yaml")).to_graph()
        result[instrument] = {label: graph.tasks[label].config for label in ("isr", "calibrateImage")}
    return result


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "demo"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "docs"):
        assert re.search(rf"^{target}: ", makefile, re.MULTILINE), target


def test_readme_variance_rescale(configs: dict[str, dict[str, Any]]) -> None:
    # Off in both tasks; VIRCAM's ProcessCcd pipeline turns it on, DECam's does not.
    assert not VistaIsrTask.ConfigClass().noiseCheck.doRescale
    assert not DecamCpIsrTask.ConfigClass().noiseCheck.doRescale
    assert configs["VIRCAM"]["isr"].noiseCheck.doRescale
    assert not configs["DECam"]["isr"].noiseCheck.doRescale
    assert "config.noiseCheck.doRescale = True" in (ROOT / "config/vircam/processCcd.py").read_text()
    pipeline = (ROOT / "pipelines/VIRCAM/ProcessCcd.yaml").read_text()
    assert "config/vircam/processCcd.py" in pipeline
    _readme_says(
        "`pipelines/VIRCAM/ProcessCcd.yaml` (and `DRP.yaml`, which imports it) turns the rescale on",
        "(`config/vircam/processCcd.py`",
        "for DECam it is off",
        "`-c isr:noiseCheck.doRescale=True` turns it on",
    )
    assert "opt-in" not in README


def test_readme_noise_tolerances(configs: dict[str, dict[str, Any]]) -> None:
    assert configs["VIRCAM"]["isr"].noiseCheck.tolerance == pytest.approx(0.05)
    assert configs["DECam"]["isr"].noiseCheck.tolerance == pytest.approx(0.10)
    _readme_says("more than 5% (VIRCAM) or 10% (DECam)")


def test_readme_reference_catalogue_and_photometry(configs: dict[str, dict[str, Any]]) -> None:
    for instrument in ("VIRCAM", "DECam"):
        calibrate = configs[instrument]["calibrateImage"]
        assert calibrate.connections.astrometry_ref_cat == "gaia_dr3"
        assert calibrate.photometry.minStarsToApply == 10
    assert configs["VIRCAM"]["calibrateImage"].connections.photometry_ref_cat == "twomass_psc"
    assert set(configs["VIRCAM"]["calibrateImage"].photometry.colorTerms) == {"z", "y", "J", "H", "Ks"}
    assert configs["DECam"]["calibrateImage"].photometry.colorTerms
    _readme_says(
        "`calibrateImage` reads the dataset type `gaia_dr3`",
        "`-c calibrateImage:connections.astrometry_ref_cat=NAME`",
        "replaces the header's from 10 matched stars",
        "without 2MASS shards VIRCAM and WFCAM keep CASU's `MAGZPT`",
    )


def test_readme_ingest_and_output_defaults() -> None:
    transfer = next(param for param in ingest_command("VIRCAM").params if param.name == "transfer")
    assert transfer.default == "copy"
    seed = Config(str(ROOT / "config/butler/seed.yaml"))
    assert seed["datastore", "formatters", "VisitImage", "parameters", "recipe"] == "lossless"
    output = next(param for param in process_ccd.params if param.name == "output")
    assert "u/$USER/processCcd" in output.help
    _readme_says(
        "**Ingest** copies files into the repository",
        "the default write recipe is `lossless`",
        "writes to `u/$USER/processCcd` unless given `-o`",
    )


def test_processing_page_calibrate_defaults(configs: dict[str, dict[str, Any]]) -> None:
    """The numbers docs/processing.rst gives for the calibrateImage stages."""
    page = " ".join((DOCS / "processing.rst").read_text().split())
    vircam, decam = (configs[instrument]["calibrateImage"] for instrument in ("VIRCAM", "DECam"))
    assert (vircam.background.meshSize, decam.background.meshSize) == (128, 64)
    assert "128-pixel cells (64 for DECam)" in page
    assert vircam.detection.threshold == 5.0 and "detection at 5 sigma" in page
    radii = vircam.measurement.apertureRadii
    assert (min(radii), max(radii)) == (3.0, 17.0) and "apertures of 3-17 pixels" in page
    assert vircam.psf.minStars == 5 and "fewer than 5 stars" in page
    assert vircam.apertureCorrection.referenceRadius == 12.0 and "to the 12-pixel aperture" in page
    astrometry = vircam.astrometry
    assert (astrometry.minMatchesShift, astrometry.minMatchesAffine) == (3, 20)
    assert "with 3-19 matches, shift" in page
    assert "applied from 10 stars" in page


def test_readme_links_exist() -> None:
    for path in re.findall(r"`(docs/[\w./-]+)`", README):
        assert (ROOT / path).exists(), path


def test_own_data_file_names_are_the_policy_patterns() -> None:
    """Every file-name pattern the own-data guide gives is one the ingest
    policy declares, and the guide's example names match them."""
    policies = [ROOT / "policy" / instrument / "datasets.yaml" for instrument in ("vircam", "decam")]
    patterns = {
        pattern: product
        for path in policies
        for product, entry in yaml.safe_load(path.read_text())["products"].items()
        for pattern in entry["patterns"]
    }
    guide = (DOCS / "own-data.rst").read_text()
    given = re.findall(r"``(\*_[\w*]+\.fits?(?:\.fz)?)``", guide)
    assert len(given) >= 9
    for pattern in given:
        assert pattern in patterns, pattern
    examples = re.findall(r"``((?:v\d{8}_\d{5}|c4d_\d{6}_\d{6})_[\w.]+)``", guide)
    assert len(examples) >= 6
    for example in examples:
        assert any(fnmatch.fnmatch(example, pattern) for pattern in patterns), example


def test_gaia_query_example_writes_what_ingest_refcat_reads() -> None:
    spec = importlib.util.spec_from_file_location("query_gaia_dr3", DOCS / "examples" / "query_gaia_dr3.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    required = {name for name, column in GAIA_COLUMNS.items() if column.required}
    assert set(example.REQUIRED_COLUMNS) == required
    assert set(example.OPTIONAL_COLUMNS) <= set(GAIA_COLUMNS) - required
    for name in example.REQUIRED_COLUMNS + example.OPTIONAL_COLUMNS:
        assert re.search(rf"\b{name}\b", example.query(10.0, -5.0, 1.0)), name
    # A table as the Gaia archive answers the query (DR3 types, units in the archive's
    # spelling) is accepted and converted to the stored types and units.
    archive_units = {"deg": "deg", "mas": "mas", "mas/yr": "mas.yr**-1", "mag": "mag", "yr": "yr"}
    table = Table()
    for name in example.REQUIRED_COLUMNS + example.OPTIONAL_COLUMNS:
        column = GAIA_COLUMNS[name]
        dtype = np.float64 if column.dtype.kind == "f" else column.dtype
        values = np.full(3, 1, dtype=dtype)
        unit = column.unit.to_string() if column.unit is not None else None
        table[name] = (
            values if unit is None else values * u.Unit(archive_units.get(unit, unit), format="vounit")
        )
    table["ref_epoch"] = [2016.0] * 3 * u.yr
    standardized = standardize_columns(table, "query result")
    assert standardized["pmra"].unit == u.mas / u.yr
    assert standardized["ra_error"].dtype == np.float32


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs built with warnings as errors from a copy of ``docs/``."""
    work = tmp_path_factory.mktemp("docs")
    source = work / "source"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated", "api"))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", work / "doctrees"]
        + [source, work / "html"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work


def test_docs_build_without_warnings(built_docs: Path) -> None:
    html = built_docs / "html"
    for page in ("index", "getting-started", "own-data", "limitations", "api", "generated/config"):
        assert (html / f"{page}.html").exists(), page


def test_generated_config_reference(built_docs: Path) -> None:
    text = (built_docs / "source/generated/config.rst").read_text()
    for task in ("VistaIsrTask", "DecamCpIsrTask", "CalibrateImageTask", "MakeDirectWarpTask"):
        assert f"{task} (``" in text, task
    assert "AssembleCellCoaddTask" in text
    # Fields of the tasks and of their subtasks, with the defaults of the code.
    assert "``interpolationLength``" in text
    # VistaIsrTask's rescale: off by default, on in VIRCAM's pipelines (a column of its own).
    assert re.search(r"``noiseCheck\.doRescale``\n\s+- bool\n\s+- ``False``\n\s+- ``True``\n", text)
    assert "``background.meshSize``" in text
    # The instrument overrides, as they are.
    assert (ROOT / "config/vircam/processCcd.py").read_text().splitlines()[-1] in text


def test_generated_dataset_types(built_docs: Path) -> None:
    text = (built_docs / "source/generated/datasets.rst").read_text()
    rows = {}
    for block in text.split("   * - ")[1:]:
        cells = [cell.strip() for cell in block.split("\n     - ")]
        rows[cells[0]] = cells[1:]
    assert rows["``deep_coadd``"][:2] == ["``CellCoadd``", "band, skymap, tract, patch"]
    assert rows["``single_visit_star``"][0] == "``ArrowAstropy``"
    assert rows["``casu_stack``"][2] == (
        "``butler ingest-*`` (``policy/vircam/datasets.yaml``, ``policy/wfcam/datasets.yaml``)"
    )
    assert rows["``gaia_dr3``"][1:3] == ["htm7", "``butler ingest-refcat`` (prerequisite)"]
    assert rows["``skyMap``"][2] == "``butler register-skymap``"
    # Every dataset type says what it is.
    assert all(cells[-1] for cells in rows.values())


def test_generated_cli_reference(built_docs: Path) -> None:
    text = (built_docs / "source/generated/cli.rst").read_text()
    commands = (
        "butler register-skymap",
        "butler ingest-refcat",
        "processCcd.py",
        "coaddDriver.py",
        "multiBandDriver.py",
        "ingestImages.py",
    )
    for command in commands:
        assert f"Usage: {command} [OPTIONS]" in text, command
    assert "--data-query" in text


def _python_blocks(page: Path) -> list[str]:
    """Return the ``.. code-block:: python`` blocks of a page, dedented."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", page.read_text())
    return [textwrap.dedent(block) for block in blocks]


@pytest.mark.slow
def test_reading_outputs_example_runs(processed_vircam: Path) -> None:
    """The single-visit part of docs/reading-outputs.rst runs as written on a
    processed repository."""
    example = _python_blocks(DOCS / "reading-outputs.rst")[0]
    code = example.replace('"REPO"', repr(str(processed_vircam))).replace(
        '"u/me/vircam"', repr(SERIAL_OUTPUT)
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "reading-outputs.rst", "exec"), namespace)
    assert min(namespace["image"].image.array.shape) >= 256  # the simulated stacks are 256 pixels and jitter
    assert namespace["image"].metadata.get("PHOTOCAL_SOURCE") == "header"
    assert len(namespace["point_sources"]) > 0
    assert set(namespace["stars"]["extendedness"]) <= {0, 1}
