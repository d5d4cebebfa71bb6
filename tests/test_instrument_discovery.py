"""Instruments are discovered from their policy directories: a toy fourth
instrument, made in a temporary directory from its policy, its translator
module, its config overrides and its pipeline alone (no edit to the package),
gets its ``butler`` ingest command, is ingested into a real repository and is
processed by a real ``pipetask run`` of its isr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import FITSFixedWarning
from lsst.daf.butler import Butler

from lsst.obs.vista._resources import POLICY_DIR
from lsst.obs.vista.discovery import INSTRUMENT_PATH_VARIABLE, instrument_entries
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

BIN = Path(sys.executable).parent
OUTPUT = "u/test/toy"

TRANSLATOR = '''
"""Header translator of the toy instrument: VIRCAM's, under another name."""

from lsst.obs.vista.translators import VircamTranslator


class ToycamTranslator(VircamTranslator):
    name = "TOYCAM"
    supported_instrument = "TOYCAM"
    _const_map = {**VircamTranslator._const_map, "instrument": "TOYCAM", "telescope": "TOY"}

    @classmethod
    def can_translate(cls, header, filename=None):
        return str(header.get("INSTRUME", "")).strip() == "TOYCAM"

    def to_physical_filter(self):
        return f"TOYCAM-{self._value('ESO INS FILT1 NAME')}"
'''

REGISTRATION = """
name: TOYCAM
class_name: Toycam
base: lsst.obs.vista.instrument.CasuInstrument
doc: A toy instrument registered from a directory outside the package.
translator: toycam_translator.ToycamTranslator
exposure_max: 100000000000000
raw_formatter: lsst.obs.vista.formatters.ImageHduFormatter
ingest_command:
  name: ingest-toy
  short_help: Ingest toy stacks.
  help: Ingest toy stacks into REPO.
"""

DATASETS = """
run: TOYCAM/raw/toy
chain: TOYCAM/defaults
products:
  toy_stack:
    doc: A toy stack.
    dimensions: [instrument, exposure, detector]
    storage_class: ImageV2
    formatter: lsst.obs.vista.formatters.ImageHduFormatter
    patterns: ["*_toy.fits"]
    hdu: {kind: image, extname: "DET1.CHIP{detector}", detector_card: ESO DET CHIP NO}
    unit: adu
    celestial_wcs: true
"""

ISR_CONFIG = """
from lsst.obs.vista.isr import BackgroundVarianceTask

config.fallbackVariance.retarget(BackgroundVarianceTask)
config.masking.noDataValues = [0.0]
config.useCatalog = False
# Recognisable in the output: the toy's own override reached the task.
config.noiseCheck.tolerance = 0.37
"""

PIPELINE = """
description: isr of the toy instrument.
instrument: lsst.obs.vista.Toycam
tasks:
  isr:
    class: lsst.obs.vista.VistaIsrTask
    config:
      connections.stack: toy_stack
"""


def _toy_root(root: Path) -> Path:
    """Write the toy instrument's files under ``root``."""
    policy = root / "policy" / "toycam"
    policy.mkdir(parents=True)
    (policy / "instrument.yaml").write_text(REGISTRATION)
    (policy / "datasets.yaml").write_text(DATASETS)
    camera = (POLICY_DIR / "vircam" / "camera.yaml").read_text()
    (policy / "camera.yaml").write_text(camera.replace("VIRCAM", "TOYCAM"))
    (root / "config" / "toycam").mkdir(parents=True)
    (root / "config" / "toycam" / "isr.py").write_text(ISR_CONFIG)
    (root / "pipelines" / "TOYCAM").mkdir(parents=True)
    (root / "pipelines" / "TOYCAM" / "ProcessCcd.yaml").write_text(PIPELINE)
    (root / "python").mkdir()
    (root / "python" / "toycam_translator.py").write_text(textwrap.dedent(TRANSLATOR))
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy instrument's directory, a toy stack, and the environment that
    makes the instrument known."""
    root = _toy_root(tmp_path_factory.mktemp("toy"))
    data = tmp_path_factory.mktemp("toy_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        stack = write_pawprint_stack(data, 0, SimulationConfig(size=64, detectors=(1,), seed=5, jitter=2.0))
    path = data / stack.stack.name.replace("_st.fit", "_toy.fits")
    with fits.open(stack.stack) as hdus:
        hdus[0].header["INSTRUME"] = "TOYCAM"
        hdus.writeto(path)
    for product in (stack.stack, stack.confidence, stack.catalog, stack.truth):
        product.unlink()
    env = {
        **os.environ,
        INSTRUMENT_PATH_VARIABLE: str(root),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "python"), os.environ.get("PYTHONPATH")])),
    }
    return root, path, env


@pytest.fixture(scope="module")
def processed(toy, tmp_path_factory):
    root, path, env = toy
    repo = tmp_path_factory.mktemp("repo")

    def run(*command):
        result = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]

    run(BIN / "butler", "create", repo)
    run(BIN / "butler", "ingest-toy", repo, path.parent)
    run(
        BIN / "pipetask", "run", "-b", repo, "-i", "TOYCAM/defaults", "-o", OUTPUT,
        "--register-dataset-types", "-p", root / "pipelines" / "TOYCAM" / "ProcessCcd.yaml",
    )  # fmt: skip
    return repo


def test_package_instruments_are_their_policy_directories():
    entries = instrument_entries()
    assert {"VIRCAM", "DECam"} <= set(entries)
    for entry in entries.values():
        assert entry.policy_dir.parent == POLICY_DIR
        assert (entry.policy_dir / "camera.yaml").is_file()
        assert (entry.pipelines_dir / "ProcessCcd.yaml").is_file()


def test_toy_instrument_is_found_from_its_directory(toy, monkeypatch):
    root, _, env = toy
    monkeypatch.setenv(INSTRUMENT_PATH_VARIABLE, env[INSTRUMENT_PATH_VARIABLE])
    monkeypatch.syspath_prepend(str(root / "python"))
    from lsst.obs.vista.cli.process_ccd import _pipeline
    from lsst.obs.vista.cli.script import ingest_instruments
    from lsst.obs.vista.instrument import policy_instrument

    assert "TOYCAM" in ingest_instruments()
    assert _pipeline("TOYCAM") == root / "pipelines" / "TOYCAM" / "ProcessCcd.yaml"
    toycam = policy_instrument("TOYCAM")
    assert toycam.getName() == "TOYCAM"
    assert toycam().configPaths[-1] == str(root / "config" / "toycam")
    assert len(toycam.camera().detectors) == 16


def test_toy_instrument_is_ingested_and_processed(processed):
    with Butler.from_config(str(processed)) as butler:
        (record,) = butler.query_dimension_records("instrument", instrument="TOYCAM")
        assert record.class_name == "lsst.obs.vista.instrument.Toycam"
        (stack,) = butler.query_datasets("toy_stack", collections="TOYCAM/defaults")
        assert stack.dataId["detector"] == 1
        (ref,) = butler.query_datasets("post_isr_image", collections=OUTPUT)
        exposure = butler.get(ref)
        assert exposure.obs_info.instrument == "TOYCAM"
        assert exposure.obs_info.physical_filter == "TOYCAM-Z"
        config = butler.get("isr_config", collections=OUTPUT)
        assert config.noiseCheck.tolerance == pytest.approx(0.37)


def test_no_toy_without_its_directory():
    # The toy lives only in the environment of the commands above.
    assert "TOYCAM" not in instrument_entries()
