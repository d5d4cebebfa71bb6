"""Faults at run time of ``processCcd.py``, through the real command:
stopped by SIGTERM at several points, a quantum failing half-way (its
directory unwritable, as on a full disk) and an input file deleted, each
then resumed by re-running the command its last line gives; and SIGINT
reaching every process of a command its runner starts.  (Faults of
``pipetask run`` and of the other commands: test_runtime_faults.py.)"""

from __future__ import annotations

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

import pytest
from lsst.daf.butler import Butler, Config, MissingCollectionError, MissingDatasetTypeError

from conftest import SERIAL_OUTPUT
from file_modes import without_root_override
from lsst.obs.vista.cli.group_steps import STOP_SIGNALS
from lsst.obs.vista.cli.signal_forwarding import SignalForwarder

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent

PROCESSED = SERIAL_OUTPUT
"""processCcd.py's outputs of an uninterrupted run."""
STEP_OUTPUTS = ("post_isr_image", "preliminary_visit_image", "single_visit_star")
TIMEOUT = 300
"""Seconds any processCcd.py run of these tests may take."""


def process_ccd(repo: Path, output: str, *options: str) -> list[str]:
    return [str(BIN / "processCcd.py"), str(repo), "-o", output, *options]


@pytest.fixture(scope="module")
def processed(processed_vircam: Path) -> Path:
    """Two stacks of two detectors and their reference catalogue, and the
    outputs of an uninterrupted ``processCcd.py`` in ``PROCESSED`` (this
    module's copy of the shared `processed_vircam`)."""
    return processed_vircam


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
    ("options", "markers"),
    # "writing" first: a resumed run finds the finished quanta's images at once.
    [((), ("writing",)), (("-j", "2"), ("writing", "registering"))],
    ids=["j1-during-pipetask-run", "j2-during-run-qbb-then-just-after-a-group-finished"],
)
def test_sigterm_stops_the_workers_and_the_same_command_resumes(
    processed: Path, tmp_path: Path, options: tuple[str, ...], markers: tuple[str, ...]
) -> None:
    # With -j 2 the run resumed after the first stop is stopped in its turn,
    # just after a group finished, and then resumed to the end: two stops and
    # a resume checked in three -j 2 runs, each tens of CPU-seconds.
    output = f"u/test/sigterm{'-'.join(options)}"
    command = process_ccd(processed, output, *options)
    to_run, done = command, 0
    for marker in markers:
        if marker == "registering":
            # A group has run its quanta and is registering them: that is left
            # to finish (the other group, if still running, is stopped).
            ready = a_group_registering
        else:
            # An isr quantum is writing its image: the run is half-way.
            ready = a_file_named(processed, output, "post_isr_image_*.fits")
        status, lines = run_processccd(to_run, tmp_path / "tmp", stop_when=ready)
        assert status == 128 + signal.SIGTERM, "\n".join(lines[-30:])
        before, done = done, finished_count(processed, output)
        assert done >= before
        assert 2 <= done <= 4 if marker == "registering" else done < 4
        assert lines[-1] == (
            f"processCcd.py: stopped by SIGTERM; {done} of 4 data IDs are processed in {output} and the "
            "unfinished quanta's outputs are removed; to resume, re-run this command: "
            + shlex.join(["processCcd.py", *command[1:]])
        )
        assert_resumable_state(processed, output, tmp_path / "tmp")
        to_run = resume_command(lines[-1])

    status, lines = run_processccd(to_run, tmp_path / "tmp")
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


def test_a_group_stopped_while_it_starts_runs_none_of_its_commands(tmp_path: Path) -> None:
    # Started with the stop signals blocked, as processCcd.py -j N starts its
    # groups, and sent SIGTERM at once: the signal waits for the group's
    # handler instead of killing the process as it imports, and the group
    # then runs nothing, not even the last command (which a failure or a stop
    # of the others leaves to run).
    steps = [shlex.join(["butler", "create", str(tmp_path / name)]) for name in ("first", "last")]
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lsst.obs.vista.cli.group_steps", *steps],
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM and stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_sigint_reaches_every_process_of_a_command_and_not_the_runner(tmp_path: Path) -> None:
    # A command that starts a worker, as pipetask run -j N does: both get
    # the SIGINT the runner receives, and the runner goes on.
    log = tmp_path / "stopped"
    # Python's own handler, or SIG_IGN where the tests were started with
    # SIGINT ignored (a background job of a shell without job control).
    before = signal.getsignal(signal.SIGINT)
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
    assert signal.getsignal(signal.SIGINT) is before
