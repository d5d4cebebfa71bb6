"""Faults at run time, through the real tools: `pipetask run -j 2` killed with
SIGKILL and resumed, `processCcd.py` stopped by SIGTERM at several points, a
quantum failing half-way (its directory unwritable, as on a full disk) and
an input file deleted, each then resumed by re-running the same command,
input files deleted from the datastore, a VIRCAM output read by a fresh
interpreter, and the commands pointed at a wrong, read-only or empty
repository."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler, Config, MissingCollectionError, MissingDatasetTypeError

from file_modes import without_root_override
from lsst.obs.vista import Vircam
from lsst.obs.vista.cli import export_legacy, ingest_casu, ingest_refcat, summarize_isr
from lsst.obs.vista.cli.process_ccd import process_ccd as process_ccd_command
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.cli.signal_forwarding import SignalForwarder
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


def test_translator_entry_point_lists_vircam() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="astro_metadata_translators", name="obs_vista")
    assert entry_point.load()() == ["VIRCAM"]


def one_line_error(command, args: list[str]) -> str:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 1, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


def test_commands_on_a_missing_repository_say_so_in_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    expected = f"{missing}: no butler repository there (no butler.yaml)."
    assert one_line_error(ingest_casu, [missing, str(tmp_path)]) == expected
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


# processCcd.py stopped, failing half-way or missing an input, then resumed
# by re-running the command its last line gives.

PROCESSED = "u/test/processed"
"""processCcd.py's outputs of an uninterrupted run."""
STEP_OUTPUTS = ("post_isr_image", "preliminary_visit_image", "single_visit_star")
TIMEOUT = 300
"""Seconds any processCcd.py run of these tests may take."""


def process_ccd(repo: Path, output: str, *options: str) -> list[str]:
    return [str(BIN / "processCcd.py"), str(repo), "-o", output, *options]


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two stacks of two detectors and their reference catalogue, and the
    outputs of an uninterrupted ``processCcd.py`` in ``PROCESSED``."""
    root = tmp_path_factory.mktemp("processed")
    repo = root / "repo"
    run([str(BIN / "butler"), "create", "--seed-config", str(SEED), str(repo)])
    run([sys.executable, "-m", "lsst.obs.vista.sim", str(root / "sim"), "--stacks", "2", "--size", "256",
         "--detectors", "1,2", "--seed", "5", "--refcat", str(root / "gaia.fits")])  # fmt: skip
    run([str(BIN / "butler"), "ingest-casu", str(repo), str(root / "sim"), "--transfer", "copy"])
    run([str(BIN / "butler"), "ingest-refcat", str(repo), "gaia_dr3", str(root / "gaia.fits")])
    run(process_ccd(repo, PROCESSED))
    return repo


def run_processccd(
    command: list[str],
    tmpdir: Path,
    *,
    stop_when: Callable[[list[str]], bool] | None = None,
    prefix: Sequence[str] = (),
) -> tuple[int, list[str]]:
    """Run a command with ``TMPDIR`` pointed at ``tmpdir``; return its exit
    status and standard error lines.

    With ``stop_when``, the command (not its children) is sent SIGTERM as
    soon as that is true of its standard error lines so far or of the
    repository.
    """
    tmpdir.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [*prefix, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()))
    reader.start()
    try:
        if stop_when is not None:
            deadline = time.monotonic() + TIMEOUT
            while not stop_when(lines):
                assert process.poll() is None, "ended before the marker: " + "".join(lines[-30:])
                assert time.monotonic() < deadline, "the marker did not come"
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
        reader.join(timeout=TIMEOUT)
    return process.returncode, [line.rstrip("\n") for line in lines]


def processes_using(repo: Path) -> list[str]:
    """Command lines of the processes naming the repository."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(repo) in text:
            found.append(text)
    return found


def unregistered_files(repo: Path) -> list[Path]:
    """Files of the datastore that no dataset of the repository refers to."""
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_all_datasets("*", find_first=False, limit=None)
        registered = {Path(uris.primaryURI.ospath) for uris in butler.get_many_uris(refs).values()}
    files = {path for path in repo.rglob("*") if path.is_file()}
    # The registry's database and its journal are not the datastore's.
    return sorted(path for path in files - registered - {repo / "butler.yaml"} if "sqlite3" not in path.name)


def assert_resumable_state(repo: Path, output: str, tmpdir: Path) -> None:
    """No file outside the registry, nothing left in TMPDIR, no worker
    running, and every output in the chain from a finished quantum."""
    assert unregistered_files(repo) == []
    assert list(tmpdir.iterdir()) == []
    assert processes_using(repo) == []
    with Butler.from_config(str(repo)) as butler:
        finished = {ref.dataId for ref in butler.query_datasets(
            "calibrateImage_metadata", collections=output, explain=False, find_first=False)}  # fmt: skip
        partial = butler.query_datasets(
            "preliminary_visit_image_background", collections=output, explain=False, find_first=False
        )
        assert {ref.dataId for ref in partial} <= finished


def resume_command(last_line: str) -> list[str]:
    """The command after "re-run this command: ", run from this package's bin."""
    command = shlex.split(last_line.split("re-run this command: ", 1)[1])
    assert command[0] == "processCcd.py"
    return [str(BIN / "processCcd.py"), *command[1:]]


def assert_same_as_uninterrupted(repo: Path, output: str) -> None:
    """The output chain holds each dataset once, equal to ``PROCESSED``'s."""
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_all_datasets(output, find_first=False, limit=None)
        outputs = [ref for ref in refs if ref.run.startswith(f"{output}/") and ref.dataId.required]
        counts = Counter((ref.datasetType.name, ref.dataId) for ref in outputs)
        assert [key for key, count in counts.items() if count > 1] == []
        for name in STEP_OUTPUTS:
            got = {ref.dataId: ref for ref in butler.query_datasets(name, collections=output)}
            expected = {ref.dataId: ref for ref in butler.query_datasets(name, collections=PROCESSED)}
            assert len(expected) == 4 and got.keys() == expected.keys(), name
            for data_id, ref in expected.items():
                a, b = butler.get(ref), butler.get(got[data_id])
                if name == "single_visit_star":
                    assert a.as_array().tobytes() == b.as_array().tobytes(), data_id
                else:
                    for plane in ("image", "mask", "variance"):
                        assert getattr(a, plane).array.tobytes() == getattr(b, plane).array.tobytes(), plane


def finished_count(repo: Path, output: str) -> int:
    with Butler.from_config(str(repo)) as butler:
        try:
            return len(butler.query_datasets("calibrateImage_metadata", collections=output, explain=False))
        except (MissingCollectionError, MissingDatasetTypeError):
            return 0


def a_file_named(repo: Path, output: str, pattern: str) -> Callable[[list[str]], bool]:
    return lambda lines: any((repo / output).rglob(pattern))


def a_group_registering(lines: list[str]) -> bool:
    return any(line.startswith("[part") and "INFO: Importing " in line for line in lines)


@pytest.mark.parametrize(
    ("options", "marker"),
    [((), "writing"), (("-j", "2"), "writing"), (("-j", "2"), "registering")],
    ids=["j1-during-pipetask-run", "j2-during-run-qbb", "j2-just-after-a-group-finished"],
)
def test_sigterm_stops_the_workers_and_the_same_command_resumes(
    processed: Path, tmp_path: Path, options: tuple[str, ...], marker: str
) -> None:
    output = f"u/test/sigterm{'-'.join(options)}-{marker}"
    command = process_ccd(processed, output, *options)
    if marker == "registering":
        # A group has run its quanta and is registering them: that is left
        # to finish (the other group, if still running, is stopped).
        ready = a_group_registering
    else:
        # An isr quantum is writing its image: the run is half-way.
        ready = a_file_named(processed, output, "post_isr_image_*.fits")
    status, lines = run_processccd(command, tmp_path / "tmp", stop_when=ready)
    assert status == 128 + signal.SIGTERM, "\n".join(lines[-30:])
    done = finished_count(processed, output)
    assert 2 <= done <= 4 if marker == "registering" else done < 4
    assert lines[-1] == (
        f"processCcd.py: stopped by SIGTERM; {done} of 4 data IDs are processed in {output} and the "
        "unfinished quanta's outputs are removed; to resume, re-run this command: "
        + shlex.join(["processCcd.py", *command[1:]])
    )
    assert_resumable_state(processed, output, tmp_path / "tmp")

    status, lines = run_processccd(resume_command(lines[-1]), tmp_path / "tmp")
    assert status == 0, "\n".join(lines[-30:])
    assert_resumable_state(processed, output, tmp_path / "tmp")
    assert_same_as_uninterrupted(processed, output)


def test_a_quantum_failing_half_way_is_undone_and_the_same_command_resumes(
    processed: Path, tmp_path: Path
) -> None:
    # A full disk, made real and repeatable: the repository's file template
    # puts preliminary_visit_image under full/, a directory no one may write
    # to, so each calibrateImage quantum writes its background and then fails
    # writing its image.
    prefix = without_root_override()
    repo = tmp_path / "repo"
    shutil.copytree(processed, repo)
    config = Config(str(repo / "butler.yaml"))
    config["datastore", "templates", "preliminary_visit_image"] = (
        "full/{run:/}/{datasetType}/{visit}/{datasetType}_{instrument}_{visit}_{detector.full_name}"
    )
    config.dumpToUri(str(repo / "butler.yaml"))
    (repo / "full").mkdir()
    (repo / "full").chmod(0o555)
    output = "u/test/full"
    command = process_ccd(repo, output)
    status, lines = run_processccd(command, tmp_path / "tmp", prefix=prefix)

    assert status == 1, "\n".join(lines[-30:])
    assert lines[-2] == (
        f"processCcd.py: 0 of 4 data IDs are processed in {output}; to resume once the cause is dealt with, "
        "re-run this command: " + shlex.join(["processCcd.py", *command[1:]])
    )
    assert lines[-1].startswith(
        "processCcd.py: 4 quanta failed: calibrateImage@instrument=VIRCAM,detector=1,visit="
    )
    # The exception pipetask reports wraps the cause, which the line adds.
    assert lines[-1].count(" (RuntimeError: Failed to serialize dataset preliminary_visit_image@") == 4
    cause = f"; caused by PermissionError: [Errno 13] Permission denied: '{repo / 'full'}/u')"
    assert lines[-1].count(cause) == 4
    # What pipetask had registered of the failed quanta (their backgrounds,
    # logs) is gone, with the files.
    assert not list((repo / output).rglob("preliminary_visit_image_background_*"))
    assert_resumable_state(repo, output, tmp_path / "tmp")

    (repo / "full").chmod(0o755)
    status, lines = run_processccd(resume_command(lines[-2]), tmp_path / "tmp", prefix=prefix)
    assert status == 0, "\n".join(lines[-30:])
    assert_resumable_state(repo, output, tmp_path / "tmp")
    assert_same_as_uninterrupted(repo, output)


def test_a_deleted_input_ends_with_a_line_naming_the_data_ids_and_the_cause(
    processed: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(processed, repo)
    with Butler.from_config(str(repo), collections="VIRCAM/defaults") as butler:
        (last, *_) = butler.query_datasets("casu_stack", order_by=["-exposure", "detector"], explain=False)
        exposure = last.dataId["exposure"]
        # One file holds both detectors of an exposure.
        Path(butler.getURI(last).ospath).unlink()
    output = "u/test/deleted"
    command = process_ccd(repo, output)
    status, lines = run_processccd(command, tmp_path / "tmp")

    assert status == 1, "\n".join(lines[-30:])
    causes = [
        f"isr@instrument=VIRCAM,detector={detector},exposure={exposure} (MissingInputError: isr: "
        f"casu_stack@instrument=VIRCAM,detector={detector},exposure={exposure} is registered but its file is "
        "missing from the datastore; re-ingest it or remove the dataset (`butler prune-datasets`) to run "
        "without this exposure and detector.)"
        for detector in (1, 2)
    ]
    assert lines[-1] == f"processCcd.py: 2 quanta failed: {'; '.join(causes)}"
    assert lines[-2] == (
        f"processCcd.py: 2 of 4 data IDs are processed in {output}; to resume once the cause is dealt with, "
        "re-run this command: " + shlex.join(["processCcd.py", *command[1:]])
    )
    assert_resumable_state(repo, output, tmp_path / "tmp")


_WAIT_FOR_SIGINT = """\
import signal, subprocess, sys
name, log = sys.argv[1], sys.argv[2]
def stop(signum, frame):
    with open(log, "a") as out:
        out.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
child = None
if name == "command":
    worker = [sys.executable, "-c", sys.argv[3], "worker", log]
    child = subprocess.Popen(worker, stdout=subprocess.PIPE, text=True)
    child.stdout.readline()
print("ready", flush=True)
signal.pause()
"""


def test_sigint_reaches_every_process_of_a_command_and_not_the_runner(tmp_path: Path) -> None:
    # A command that starts a worker, as pipetask run -j N does: both get
    # the SIGINT the runner receives, and the runner goes on.
    log = tmp_path / "stopped"
    with SignalForwarder() as forwarder:
        process = forwarder.popen(
            [sys.executable, "-c", _WAIT_FOR_SIGINT, "command", str(log), _WAIT_FOR_SIGINT],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        os.kill(os.getpid(), signal.SIGINT)
        assert forwarder.wait(process) == 0
    assert forwarder.received == signal.SIGINT and forwarder.name == "SIGINT"
    deadline = time.monotonic() + TIMEOUT
    while len(log.read_text().split()) < 2 and time.monotonic() < deadline:
        # The worker, an orphan once the command has gone, writes in its own time.
        time.sleep(0.01)
    assert sorted(log.read_text().split()) == ["command", "worker"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
