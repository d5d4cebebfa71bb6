"""Running the package's command-line programs from tests.

`run` starts a program as a user would, in its own process, and fails the
test with the end of its output if the exit status is not the expected one.

`invoke` runs ``butler``, ``pipetask`` or ``ingestImages.py`` in the test's
own process through daf_butler's click test runner (the same click commands
with the same plugins as the installed scripts), and `simulate` runs the simulator's
``main`` (``python -m lsst.obs.vista.sim``) in it: no new interpreter
imports the middleware and the tasks for every call (2-4 CPU-s each, most
of what building a small repository costs). Fixtures use it for the steps they
only need done; a test whose subject is a program's process (its exit
status, its messages on stderr, a signal) uses `run`.
"""

from __future__ import annotations

__all__ = ["BIN", "ROOT", "invoke", "run", "simulate"]

import contextlib
import subprocess
import sys
import traceback
from pathlib import Path

import click
from lsst.daf.butler.cli.utils import LogCliRunner

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: object, returncode: int = 0, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process from ``cwd`` and check its exit status."""
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == returncode, (
        f"exit status {result.returncode}, not {returncode}: {' '.join(map(str, command))}\n"
        + result.stdout[-3000:]
        + result.stderr[-3000:]
    )
    return result


def _program(name: str) -> click.Command:
    if name == "butler":
        from lsst.daf.butler.cli.butler import cli
    elif name == "pipetask":
        from lsst.ctrl.mpexec.cli.pipetask import cli
    elif name == "ingestImages.py":
        from lsst.obs.vista.cli.ingest_images import ingest_images as cli
    else:
        raise ValueError(f"{name!r} does not run in-process; use run()")
    return cli


def invoke(program: str, *args: object, cwd: Path = ROOT) -> str:
    """Run ``butler``, ``pipetask`` or ``ingestImages.py`` with ``args`` in this process, from
    ``cwd``, and return what it printed; a non-zero exit status fails the
    test with the output and the traceback."""
    with contextlib.chdir(cwd):
        result = LogCliRunner().invoke(_program(program), [str(a) for a in args], catch_exceptions=True)
    if result.exit_code != 0:
        trace = "".join(traceback.format_exception(result.exception)) if result.exception else ""
        command = " ".join(map(str, (program, *args)))
        raise AssertionError(f"{command} exited with {result.exit_code}\n{result.output[-3000:]}\n{trace}")
    return result.output


def simulate(*args: object) -> None:
    """Run ``python -m lsst.obs.vista.sim`` with ``args`` in this process."""
    from lsst.obs.vista.sim.__main__ import main

    assert main([str(a) for a in args]) == 0, f"python -m lsst.obs.vista.sim {' '.join(map(str, args))}"
