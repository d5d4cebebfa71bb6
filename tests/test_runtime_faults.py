"""Faults at run time, through the real tools: `pipetask run -j 2` killed with
SIGKILL and resumed, input files deleted from the datastore, a VIRCAM output
read by a fresh interpreter, and the commands pointed at a wrong, read-only
or empty repository.  (processCcd.py stopped, failing half-way or missing an
input: test_processccd_faults.py.)"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler, Config
from lsst.daf.butler.cli.utils import LogCliRunner

from file_modes import without_root_override
from lsst.obs.vista import Vircam
from lsst.obs.vista.cli import export_legacy, ingest_refcat, summarize_isr
from lsst.obs.vista.cli.commands import ingest_command
from lsst.obs.vista.cli.process_ccd import process_ccd as process_ccd_command
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ISR = f"{ROOT / 'pipelines' / 'VIRCAM' / 'ProcessCcd.yaml'}#isr"
SEED = ROOT / "config" / "butler" / "seed.yaml"
CONFIG = SimulationConfig(size=128, detectors=(1, 2), seed=5)
N_STACKS = 4
N_QUANTA = N_STACKS * len(CONFIG.detectors)
REFERENCE = "u/test/reference"
ERROR = "lsst.obs.vista.isr.pipeline_task.MissingInputError"
"""How the executor's traceback ends for a quantum that lacks an input file."""


def pipetask(repo: Path, output: str, *options: str) -> list[str]:
    """The command line of a ``pipetask run`` of the VIRCAM isr step."""
    return [str(BIN / "pipetask"), "run", "-b", str(repo), "-i", "VIRCAM/defaults", "-o", output, "-p", ISR,
            *options]  # fmt: skip


def run(command: list[str], returncode: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == returncode, result.stderr[-3000:]
    return result


def registered_files(repo: Path, run_name: str) -> set[Path]:
    """Files the datastore records for a run."""
    with Butler.from_config(str(repo)) as butler:
        refs = butler.registry.queryDatasets(..., collections=run_name)
        return {butler.getURI(ref).ospath for ref in refs}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four stacks of two detectors, ingested (copied), and the isr outputs
    of an uninterrupted run in ``REFERENCE``."""
    data = tmp_path_factory.mktemp("data")
    for index in range(N_STACKS):
        write_pawprint_stack(data, index, CONFIG)
    root = tmp_path_factory.mktemp("repo")
    Butler.makeRepo(str(root), config=Config(str(SEED)))
    with Butler.from_config(str(root), writeable=True) as butler:
        Vircam().register(butler.registry)
    assert ingest_products(str(root), [str(data)], "copy", 1, ["VIRCAM"])
    run(pipetask(root, REFERENCE, "--register-dataset-types"))
    return root


def exposures(repo: Path) -> list[int]:
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_datasets("casu_stack", collections="VIRCAM/defaults", explain=False)
        return sorted({ref.dataId["exposure"] for ref in refs})


def outputs(repo: Path, collection: str) -> dict[tuple[int, int], object]:
    """post_isr_image of a collection by (exposure, detector)."""
    with Butler.from_config(str(repo), collections=collection) as butler:
        return {
            (ref.dataId["exposure"], ref.dataId["detector"]): butler.get(ref)
            for ref in butler.query_datasets("post_isr_image", explain=False)
        }


def test_pipetask_killed_half_way_resumes_to_the_uninterrupted_outputs(repo: Path) -> None:
    output = "u/test/killed"
    output_dir = repo / output
    with open(os.devnull, "w") as devnull:
        process = subprocess.Popen(
            pipetask(repo, output, "-j", "2"), stdout=devnull, stderr=devnull, start_new_session=True
        )
        # Once two quanta have written their last dataset (the log), the
        # other worker is somewhere in its quantum: kill pipetask and its
        # workers, as a node failure would.
        while process.poll() is None and len(list(output_dir.rglob("isr_log_*"))) < 2:
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "pipetask ended before it could be killed"
    done = len(list(output_dir.rglob("post_isr_image_*.fits")))
    assert 2 <= done < N_QUANTA

    # A writer killed inside a transaction leaves SQLite's hot journal, which
    # only a writeable connection can roll back; pipetask's first connections
    # are read-only ("attempt to write a readonly database").  processCcd.py
    # opens the repository writeable first for this reason; here, by hand.
    with Butler.from_config(str(repo), writeable=True) as butler:
        butler.registry.queryCollections()
    run(pipetask(repo, output, "--extend-run", "--skip-existing"))

    resumed, reference = outputs(repo, output), outputs(repo, REFERENCE)
    assert len(reference) == N_QUANTA and resumed.keys() == reference.keys()
    for key, expected in reference.items():
        got = resumed[key]
        assert np.array_equal(got.image.array, expected.image.array, equal_nan=True), key
        assert np.array_equal(got.variance.array, expected.variance.array), key
        assert got.mask.compare(expected.mask) == {}, key
        assert dict(got.metadata) == dict(expected.metadata), key
        assert got.obs_info == expected.obs_info, key
    # Every dataset of the run has its file, and every file reads.
    files = registered_files(repo, output)
    assert all(Path(path).is_file() for path in files)


@pytest.fixture
def damaged(repo: Path, tmp_path: Path) -> tuple[Path, int, int]:
    """A copy of the repository whose first exposure lost its stack file
    and whose second lost its confidence-map file."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("u"))
    first, second = exposures(copy)[:2]
    with Butler.from_config(str(copy), collections="VIRCAM/defaults") as butler:
        for dataset_type, exposure in (("casu_stack", first), ("casu_confidence", second)):
            ref = butler.find_dataset(dataset_type, instrument="VIRCAM", exposure=exposure, detector=1)
            Path(butler.getURI(ref).ospath).unlink()
    return copy, first, second


@pytest.mark.parametrize("records", [False, True], ids=["existence-checked", "datastore-records"])
def test_missing_input_files_fail_or_warn_never_vanish(damaged: tuple[Path, int, int], records: bool) -> None:
    copy, first, second = damaged
    output = "u/test/damaged"
    options = ["--register-dataset-types", "-d", f"exposure IN ({first}, {second})"]
    if records:
        # Quanta that carry their inputs' datastore records (as with a
        # quantum-backed butler) are not checked for files before they run.
        options.append("--qgraph-datastore-records")
    result = run(pipetask(copy, output, *options), returncode=1)

    # The stack's two quanta (one file holds both detectors) fail, naming
    # the dataset, and the file when the quantum knows it.
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{ERROR}: ")]
    assert len(errors) == len(CONFIG.detectors)
    for detector, line in zip(CONFIG.detectors, sorted(errors), strict=True):
        assert f"casu_stack@instrument=VIRCAM,detector={detector},exposure={first}" in line
        assert ("its file /" in line and "/casu_stack_VIRCAM" in line) == records
    # The other quanta ran without the confidence map: a warning naming
    # what was used instead, and the same in the output's metadata.
    lines = [line for line in result.stderr.splitlines() if "WARNING" in line and "casu_confidence" in line]
    assert len(lines) == len(CONFIG.detectors)
    substitute = "variance from BackgroundVarianceTask instead of ConfidenceMapVarianceTask"
    assert all(line.endswith(f"used instead: {substitute}.") for line in lines)
    made = outputs(copy, output)
    assert sorted(made) == [(second, detector) for detector in CONFIG.detectors]
    for image in made.values():
        assert image.metadata["VARIANCE_MODEL"] == "measured background"
        assert image.metadata["MISSING_CASU_CONFIDENCE"].endswith(substitute)
        assert ("casu_confidence_VIRCAM" in image.metadata["MISSING_CASU_CONFIDENCE"]) == records


def test_fresh_interpreter_reads_a_vircam_output(repo: Path) -> None:
    script = (
        "import sys\n"
        "from lsst.daf.butler import Butler\n"
        f"butler = Butler.from_config({str(repo)!r}, collections={REFERENCE!r})\n"
        "ref = butler.query_datasets('post_isr_image', limit=1, explain=False)[0]\n"
        "assert 'lsst.obs.vista' not in sys.modules\n"
        "image = butler.get(ref)\n"
        "print(image.obs_info.instrument, image.obs_info.extensions, image.metadata['CASU_PRODUCT'])\n"
    )
    result = run([sys.executable, "-c", script])
    assert result.stdout.split() == ["VIRCAM", "{}", "pawprint_stack"]


def test_translator_entry_point_lists_vircam_and_wfcam() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="astro_metadata_translators", name="obs_vista")
    assert entry_point.load()() == ["VIRCAM", "WFCAM"]


def one_line_error(command, args: list[str]) -> str:
    # LogCliRunner undoes the logging set-up of processCcd.py when it ends.
    result = LogCliRunner().invoke(command, args)
    assert result.exit_code == 1, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


def test_commands_on_a_missing_repository_say_so_in_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    expected = f"{missing}: no butler repository there (no butler.yaml)."
    assert one_line_error(ingest_command("VIRCAM"), [missing, str(tmp_path)]) == expected
    assert one_line_error(summarize_isr, [missing, "--collections", "x"]) == expected
    assert one_line_error(export_legacy, [missing, str(tmp_path / "out"), "--collections", "x"]) == expected
    assert one_line_error(ingest_refcat, [missing, "gaia_dr3", str(SEED)]) == expected
    assert one_line_error(process_ccd_command, [missing, "--id", "instrument=VIRCAM"]) == expected
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out").exists()


def test_unknown_collection_and_empty_repository_say_so_in_one_line(repo: Path, tmp_path: Path) -> None:
    assert one_line_error(summarize_isr, [str(repo), "--collections", "u/nobody"]) == (
        f"{repo}: No collection with name 'u/nobody' found."
    )
    out = tmp_path / "out"
    assert one_line_error(export_legacy, [str(repo), str(out), "--collections", "u/nobody"]) == (
        f"{repo}: No collection with name 'u/nobody' found."
    )
    empty = tmp_path / "empty"
    Butler.makeRepo(str(empty))
    assert one_line_error(summarize_isr, [str(empty), "--collections", "u/nobody"]) == (
        f"{empty}: No collection with name 'u/nobody' found."
    )
    # The collection exists but holds nothing isr wrote.
    with Butler.from_config(str(empty), writeable=True) as butler:
        butler.collections.register("u/nobody")
    assert one_line_error(summarize_isr, [str(empty), "--collections", "u/nobody"]) == (
        f"{empty}: Dataset type 'post_isr_image' does not exist."
    )
    assert not out.exists()


def test_ingest_into_a_read_only_repository_says_so_in_one_line(repo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("u"))
    prefix = without_root_override()
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    registry = (copy / "gen3.sqlite3").read_bytes()
    for path in (copy, *copy.rglob("*")):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        result = run([*prefix, str(BIN / "butler"), "ingest-casu", str(copy), str(copy)], returncode=1)
    finally:
        for path in (copy, *copy.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)
    assert result.stderr.splitlines() == [
        f"Error: {copy}: the repository is read-only for this user (attempt to write a readonly database)."
    ]
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before
    assert (copy / "gen3.sqlite3").read_bytes() == registry
