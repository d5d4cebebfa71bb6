"""The bad-input table of the command line: one row per command and kind of
bad input (no repository there, an unknown collection, an unknown data ID
key or value, a typo'd option).

Every command of the package (the ``butler`` subcommands it adds,
``processCcd.py``, ``ingestImages.py`` and ``python -m
lsst.obs.vista.report``) runs for real, in this process, on a small SQLite
repository holding one synthetic VIRCAM exposure and the ProcessCcd
pipeline's dataset types; each row checks the exit status, that the
standard error is exactly the one line expected (naming what was wrong and
the nearest valid name), that nothing raised past the command, and that the
repository did not change.  A few rows run the installed scripts in
subprocesses: the traceback appears with ``--log-level DEBUG`` only.
(The ingest's bad files: test_bad_input.py.)
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest
from astropy.wcs import FITSFixedWarning
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli
from lsst.daf.butler.cli.utils import LogCliRunner
from lsst.pipe.base import Pipeline

from lsst.obs.vista.cli.command_style import ButlerSubcommand
from lsst.obs.vista.cli.ingest_images import ingest_images
from lsst.obs.vista.cli.process_ccd import process_ccd
from lsst.obs.vista.cli.script import ingest_instruments
from lsst.obs.vista.report.__main__ import report
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = ROOT / "config" / "butler" / "seed.yaml"
SKYMAP = ROOT / "config" / "skymap" / "discrete_example.py"
PIPELINE = ROOT / "pipelines" / "VIRCAM" / "ProcessCcd.yaml"
DECAM = Path(__file__).parent / "data" / "decam_cp" / "testcase4"
SCRIPTS: dict[str, click.Command] = {
    "processCcd.py": process_ccd,
    "ingestImages.py": ingest_images,
    "python -m lsst.obs.vista.report": report,
}
"""The stand-alone commands, by the name users type; any other command of a
row is a ``butler`` subcommand."""


@dataclasses.dataclass(frozen=True)
class Paths:
    """What the rows' arguments name."""

    repo: Path
    """The repository of one VIRCAM exposure."""

    data: Path
    """Its ingested products (a directory)."""

    nowhere: Path
    """A path with no repository."""

    out: Path
    """An output directory not yet made."""


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    base = tmp_path_factory.mktemp("cli")
    data = base / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        write_pawprint_stack(data, 0, SimulationConfig(size=64, detectors=(1, 2), seed=11, jitter=2.0))
    repo = base / "repo"
    for args in (["create", "--seed-config", str(SEED), str(repo)], ["ingest-casu", str(repo), str(data)]):
        result = LogCliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    with Butler.from_config(str(repo), writeable=True) as butler:
        graph = Pipeline.from_uri(str(PIPELINE)).to_graph()
        graph.resolve(butler.registry)
        graph.register_dataset_types(butler)
    return Paths(repo=repo, data=data, nowhere=base / "nowhere", out=base / "out")


@dataclasses.dataclass(frozen=True)
class Row:
    """One command run on one bad input."""

    command: str
    args: tuple[str, ...]
    """Arguments, formatted with the fields of `Paths` (``{repo}`` ...)."""

    line: str
    """The one line expected on the standard error, formatted likewise."""

    status: int


NO_REPOSITORY = "Error: {nowhere}: no butler repository there (no butler.yaml)."
NO_COLLECTION = (
    "Error: {repo}: No collection with name 'VIRCAM/default' found (did you mean 'VIRCAM/defaults'?)."
)
NO_KEY = "Error: {repo}: Unrecognized identifier 'detectr' (did you mean 'detector'?)."
REPORT = "python -m lsst.obs.vista.report"

ROWS: dict[str, Row] = {
    # No repository there.
    "ingest-casu, no repository": Row("ingest-casu", ("{nowhere}", "{data}"), NO_REPOSITORY, 1),
    "ingest-instcal, no repository": Row("ingest-instcal", ("{nowhere}", "{data}"), NO_REPOSITORY, 1),
    "ingest-refcat, no repository": Row(
        "ingest-refcat", ("{nowhere}", "gaia_dr3", str(SEED)), NO_REPOSITORY, 1
    ),
    "export-legacy, no repository": Row(
        "export-legacy", ("{nowhere}", "{out}", "--collections", "x"), NO_REPOSITORY, 1
    ),
    "summarize-isr, no repository": Row(
        "summarize-isr", ("{nowhere}", "--collections", "x"), NO_REPOSITORY, 1
    ),
    "register-skymap, no repository": Row(
        "register-skymap", ("{nowhere}", "-C", str(SKYMAP)), NO_REPOSITORY, 1
    ),
    "make-report, no repository": Row(
        "make-report", ("{nowhere}", "--collections", "x", "-o", "{out}"), NO_REPOSITORY, 1
    ),
    "processCcd.py, no repository": Row(
        "processCcd.py", ("{nowhere}", "--id", "detector=1"), NO_REPOSITORY, 1
    ),
    "ingestImages.py, no repository": Row("ingestImages.py", ("{nowhere}", "{data}"), NO_REPOSITORY, 1),
    "report, no repository": Row(
        REPORT, ("{nowhere}", "--collections", "x", "-o", "{out}"), NO_REPOSITORY, 1
    ),
    # An unknown collection, alone, after a comma or repeated.
    "export-legacy, unknown collection": Row(
        "export-legacy",
        ("{repo}", "{out}", "--collections", "VIRCAM/raw/casu,VIRCAM/default"),
        NO_COLLECTION,
        1,
    ),
    "summarize-isr, unknown collection": Row(
        "summarize-isr",
        ("{repo}", "--collections", "VIRCAM/raw/casu", "--collections", "VIRCAM/default"),
        NO_COLLECTION,
        1,
    ),
    "make-report, unknown collection": Row(
        "make-report", ("{repo}", "--collections", "VIRCAM/default", "-o", "{out}"), NO_COLLECTION, 1
    ),
    "report, unknown collection": Row(
        REPORT, ("{repo}", "--collections", "VIRCAM/defaults,VIRCAM/default", "-o", "{out}"), NO_COLLECTION, 1
    ),
    "processCcd.py, unknown input": Row(
        "processCcd.py", ("{repo}", "-i", "VIRCAM/raw/casu,VIRCAM/default", "--dry-run"), NO_COLLECTION, 1
    ),
    # An unknown data ID key.
    "processCcd.py --id, unknown key": Row(
        "processCcd.py",
        ("{repo}", "--id", "detectr=1", "--dry-run"),
        "Error: Invalid value for --id: detectr=1: unknown data ID key 'detectr' (did you mean 'detector'?)",
        2,
    ),
    "processCcd.py --id, misspelt instrument key": Row(
        "processCcd.py",
        ("{repo}", "--id", "instrment=VIRCAM", "--dry-run"),
        "Error: Invalid value for --id: instrment=VIRCAM: unknown data ID key 'instrment' "
        "(did you mean 'instrument'?)",
        2,
    ),
    "processCcd.py -d, unknown key": Row(
        "processCcd.py", ("{repo}", "-d", "detectr=1", "--dry-run"), NO_KEY, 1
    ),
    "summarize-isr --where, unknown key": Row(
        "summarize-isr", ("{repo}", "--collections", "VIRCAM/defaults", "--where", "detectr=1"), NO_KEY, 1
    ),
    "export-legacy --where, unknown key": Row(
        "export-legacy",
        ("{repo}", "{out}", "--collections", "VIRCAM/defaults", "--where", "detectr=1"),
        NO_KEY,
        1,
    ),
    "make-report --where, unknown key": Row(
        "make-report",
        ("{repo}", "--collections", "VIRCAM/defaults", "-o", "{out}", "--where", "detectr=1"),
        NO_KEY,
        1,
    ),
    # An unknown data ID value.
    "processCcd.py --id, unknown detector": Row(
        "processCcd.py",
        ("{repo}", "--id", "detector=99", "--dry-run"),
        "Error: Invalid value for --id: detector=99: {repo} has no such detector for instrument VIRCAM "
        "(it has 16, from 1 to 16)",
        2,
    ),
    "processCcd.py --id, unknown instrument": Row(
        "processCcd.py",
        ("{repo}", "--id", "instrument=VIRCM", "--dry-run"),
        "Error: Invalid value for --id: instrument=VIRCM: {repo} has no such instrument "
        "(did you mean 'VIRCAM'?)",
        2,
    ),
    "processCcd.py --id, unknown filter": Row(
        "processCcd.py",
        ("{repo}", "--id", "physical_filter=VIRCAM-Kx", "--dry-run"),
        "Error: Invalid value for --id: physical_filter=VIRCAM-Kx: {repo} has no such physical_filter for "
        "instrument VIRCAM (did you mean 'VIRCAM-Ks'?)",
        2,
    ),
    "processCcd.py --id, exposure not a number": Row(
        "processCcd.py",
        ("{repo}", "--id", "exposure=abc", "--dry-run"),
        "Error: Invalid value for --id: exposure=abc: exposure is an integer",
        2,
    ),
    "summarize-isr --where, exposure not a number": Row(
        "summarize-isr",
        ("{repo}", "--collections", "VIRCAM/defaults", "--where", "exposure='abc'"),
        "Error: {repo}: Column types for comparison exposure == 'abc' do not agree (int, string).",
        1,
    ),
    "ingestImages.py, unknown instrument": Row(
        "ingestImages.py",
        ("{repo}", "{data}", "--instrument", "VIRCM"),
        "Error: Invalid value for '--instrument': 'VIRCM' is not one of "
        + ", ".join(repr(name) for name in ingest_instruments())
        + ".",
        2,
    ),
    # A typo'd option.
    "ingest-casu, typo'd option": Row(
        "ingest-casu",
        ("{repo}", "{data}", "--tranfser", "copy"),
        "Error: No such option '--tranfser'. Did you mean '--transfer'?",
        2,
    ),
    "ingest-instcal, typo'd option": Row(
        "ingest-instcal",
        ("{repo}", "{data}", "--replce"),
        "Error: No such option '--replce'. Did you mean '--replace'?",
        2,
    ),
    "ingest-refcat, file given as NAME": Row(
        "ingest-refcat",
        ("{repo}", str(SEED)),
        f"Error: Missing argument 'FILE...': {str(SEED)!r} was read as NAME; the catalogue's name "
        "(e.g. gaia_dr3) comes before the files.",
        2,
    ),
    "ingest-refcat, no file": Row(
        "ingest-refcat", ("{repo}", "gaia_dr3"), "Error: Missing argument 'FILE...'.", 2
    ),
    "export-legacy, typo'd option": Row(
        "export-legacy",
        ("{repo}", "{out}", "--collection", "VIRCAM/defaults"),
        "Error: No such option '--collection'. Did you mean '--collections'?",
        2,
    ),
    "summarize-isr, typo'd option": Row(
        "summarize-isr",
        ("{repo}", "--collections", "VIRCAM/defaults", "--dataset-typ", "x"),
        "Error: No such option '--dataset-typ'. Did you mean '--dataset-type'?",
        2,
    ),
    "register-skymap, typo'd option": Row(
        "register-skymap",
        ("{repo}", "--config-fil", str(SKYMAP)),
        "Error: No such option '--config-fil'. (Did you mean one of: '--config', '--config-file'?)",
        2,
    ),
    "make-report, typo'd option": Row(
        "make-report",
        ("{repo}", "--collections", "VIRCAM/defaults", "--outptu", "{out}"),
        "Error: No such option '--outptu'. Did you mean '--output'?",
        2,
    ),
    "processCcd.py, typo'd option": Row(
        "processCcd.py",
        ("{repo}", "--id", "detector=1", "--data-qery", "visit=1"),
        "Error: No such option '--data-qery'. Did you mean '--data-query'?",
        2,
    ),
    "ingestImages.py, typo'd option": Row(
        "ingestImages.py",
        ("{repo}", "{data}", "--instrumnt", "VIRCAM"),
        "Error: No such option '--instrumnt'. Did you mean '--instrument'?",
        2,
    ),
    "report, typo'd option": Row(
        REPORT,
        ("{repo}", "--collections", "VIRCAM/defaults", "-o", "{out}", "--max-detector", "2"),
        "Error: No such option '--max-detector'. Did you mean '--max-detectors'?",
        2,
    ),
}


def registry_bytes(repo: Path) -> bytes:
    return (repo / "gen3.sqlite3").read_bytes()


def invoke(command: str, args: list[str]) -> click.testing.Result:
    """Run a command of the package in this process."""
    if command in SCRIPTS:
        return LogCliRunner().invoke(SCRIPTS[command], args, prog_name=command)
    return LogCliRunner().invoke(cli, [command, *args])


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input(case: str, paths: Paths) -> None:
    row = ROWS[case]
    fields = dataclasses.asdict(paths)
    before = registry_bytes(paths.repo)
    result = invoke(row.command, [arg.format(**fields) for arg in row.args])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.splitlines() == [row.line.format(**fields)]
    assert "Traceback" not in result.output
    assert result.exit_code == row.status
    assert registry_bytes(paths.repo) == before
    assert not paths.nowhere.exists()


def test_commands_check_each_input_collection_given_by_commas_or_repeated(paths: Paths) -> None:
    """``-i A,B`` and ``-i A -i B`` are the same inputs, in the pipetask
    command ``processCcd.py`` prints."""
    commands = []
    for inputs in (
        ["-i", "VIRCAM/defaults,VIRCAM/raw/casu"],
        ["-i", "VIRCAM/defaults", "--input", "VIRCAM/raw/casu"],
    ):
        result = invoke("processCcd.py", [str(paths.repo), *inputs, "--dry-run"])
        assert result.exit_code == 0, result.output
        commands.append(result.stdout)
    assert commands[0] == commands[1]
    assert " -i VIRCAM/defaults,VIRCAM/raw/casu " in commands[0]


@pytest.mark.parametrize("option", ["-d", "--data-query", "--where"])
def test_process_ccd_ands_the_data_query_with_the_ids(paths: Paths, option: str) -> None:
    result = invoke(
        "processCcd.py", [str(paths.repo), "--id", "detector=1", option, "detector IN (1, 2)", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "-d 'instrument='\"'\"'VIRCAM'\"'\"' AND detector=1 AND (detector IN (1, 2))'" in result.stdout


def run_script(*command: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    "command",
    [
        (BIN / "processCcd.py", "{repo}", "--id", "detectr=1", "--dry-run"),
        (BIN / "butler", "summarize-isr", "{nowhere}", "--collections", "x"),
    ],
    ids=["processCcd.py", "butler summarize-isr"],
)
def test_the_traceback_shows_with_debug_logging_only(paths: Paths, command: tuple) -> None:
    """The installed commands: one line and no traceback by default; with
    ``--log-level DEBUG`` (the script's option, butler's before the
    subcommand) the traceback of the cause, then the same line."""
    fields = dataclasses.asdict(paths)
    args = [str(arg).format(**fields) for arg in command]
    quiet = run_script(*args)
    assert quiet.returncode != 0
    assert len(quiet.stderr.splitlines()) == 1, quiet.stderr
    assert quiet.stderr.startswith("Error: ")
    debug = run_script(args[0], "--log-level", "DEBUG", *args[1:])
    assert debug.returncode == quiet.returncode
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == quiet.stderr.strip()


@pytest.fixture(scope="module")
def two_instruments(paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The VIRCAM repository with a DECam CP cutout (CCD N2) ingested too."""
    repo = tmp_path_factory.mktemp("two") / "repo"
    shutil.copytree(paths.repo, repo)
    result = LogCliRunner().invoke(cli, ["ingest-instcal", str(repo), str(DECAM)])
    assert result.exit_code == 0, result.output
    return repo


@pytest.mark.parametrize(
    "args, instrument",
    [
        (["--id", "detector=1"], "VIRCAM"),
        (["-d", "instrument='DECam'"], "DECam"),
        (["--id", "instrument=DECam"], "DECam"),
    ],
)
def test_process_ccd_takes_the_one_instrument_whose_data_ids_match(
    two_instruments: Path, args: list[str], instrument: str
) -> None:
    result = invoke("processCcd.py", [str(two_instruments), *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"pipelines/{instrument}/ProcessCcd.yaml" in result.stdout
    assert f" -i {instrument}/defaults " in result.stdout


@pytest.mark.parametrize(
    "args, line",
    [
        ([], "{repo} holds data IDs of instruments DECam, VIRCAM: say which with --id instrument=NAME."),
        (
            ["--id", "instrment=VIRCAM"],
            "Invalid value for --id: instrment=VIRCAM: unknown data ID key 'instrment' "
            "(did you mean 'instrument'?)",
        ),
        (
            ["--id", "detector=1", "-d", "detector=2"],
            "no data IDs in {repo} match 'detector=1 AND (detector=2)'.",
        ),
    ],
    ids=["no instrument", "misspelt instrument key", "nothing matches"],
)
def test_process_ccd_on_two_instruments_says_what_is_wrong(
    two_instruments: Path, args: list[str], line: str
) -> None:
    result = invoke("processCcd.py", [str(two_instruments), *args, "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["Error: " + line.format(repo=two_instruments)]


@click.command(cls=ButlerSubcommand)
@click.argument("numbers", nargs=-1, type=float)
def mean(numbers: tuple[float, ...]) -> None:
    """A command with a bug: the mean of no numbers divides by zero."""
    click.echo(sum(numbers) / len(numbers))


def test_an_unexpected_exception_is_one_line_naming_it_and_its_traceback_is_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="lsst.obs.vista.cli"):
        result = CliRunner().invoke(mean, [])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: ZeroDivisionError: division by zero (--log-level DEBUG shows where)"
    ]
    [record] = [r for r in caplog.records if r.name == "lsst.obs.vista.cli.command_style"]
    assert isinstance(record.exc_info[1], ZeroDivisionError)


@pytest.mark.parametrize(
    "command",
    [(BIN / "butler", "make-report"), (sys.executable, "-m", "lsst.obs.vista.report")],
    ids=["butler make-report", "python -m lsst.obs.vista.report"],
)
def test_the_report_honours_the_log_level(paths: Paths, command: tuple, tmp_path: Path) -> None:
    """The report's progress lines are INFO: shown by default, not with
    ``--log-level WARNING``, which keeps the warning that there is nothing
    to report."""
    arguments = [str(paths.repo), "--collections", "VIRCAM/defaults", "-o", str(tmp_path)]
    levels = {}
    for log_level in ([], ["--log-level", "WARNING"]):
        # butler takes its log options before the subcommand.
        prefix, rest = (command[:1], command[1:]) if command[0] == BIN / "butler" else (command, ())
        result = run_script(*prefix, *log_level, *rest, *arguments)
        assert result.returncode == 0, result.stderr
        levels[bool(log_level)] = {line.split(": ")[0].split()[-1] for line in result.stderr.splitlines()}
    assert levels == {False: {"INFO", "WARNING"}, True: {"WARNING"}}
