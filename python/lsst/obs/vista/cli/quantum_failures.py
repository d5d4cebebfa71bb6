"""One line naming the quanta a pipeline run failed and why, from the
execution reports ``pipetask run --summary FILE`` (and ``run-qbb``) write and
their JSON logs (``pipetask --log-file FILE.json``).

pipetask's own last line is the executor's generic ``MPGraphExecutorError:
One or more tasks failed during execution.``; the cause of each failure is
only in a traceback above it.
"""

from __future__ import annotations

__all__ = ("QuantumFailure", "failure_line", "read_failures")

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from lsst.pipe.base.quantum_reports import ExecutionStatus, Report

_NAMED = 5
"""Failed quanta named in the line; the others are counted."""

_OWN_EXCEPTIONS = "lsst.obs.vista."
"""Prefix of this package's exception classes, whose messages are written
to be complete: their chained causes are not added."""

_CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


@dataclasses.dataclass(frozen=True)
class QuantumFailure:
    """A quantum that raised."""

    label: str
    """Label of its task."""

    data_id: dict[str, int | str]
    """Its data ID's required values."""

    exception: str
    """``ClassName: message`` of the exception it raised, on one line."""

    cause: str | None
    """``ClassName: message`` of the first exception of the chain that led
    to it, if a library wrapped it (``RuntimeError: Failed to serialize
    dataset ...`` hides ``OSError: [Errno 28] No space left on device``)."""


def read_failures(runs: Iterable[tuple[Path, Path]]) -> list[QuantumFailure]:
    """Return the quanta that raised, from execution reports and logs.

    Parameters
    ----------
    runs : iterable [`tuple` [`pathlib.Path`, `pathlib.Path`]]
        ``(report, log)`` files of each run; those not written (a run killed
        or failed before executing) are passed over.

    Returns
    -------
    failures : `list` [`QuantumFailure`]
        Failed quanta, in execution order; quanta skipped because an
        upstream quantum failed are left out.
    """
    failures = []
    for summary, log in runs:
        if not summary.is_file():
            continue
        tracebacks = _tracebacks(log)
        report = Report.model_validate_json(summary.read_text())
        for quantum in report.quantaReports:
            info = quantum.exceptionInfo
            if quantum.status is not ExecutionStatus.FAILURE or info is None:
                continue
            cause = None
            if not info.className.startswith(_OWN_EXCEPTIONS):
                cause = _first_of_chain(_traceback_of(tracebacks, quantum.taskLabel or "", quantum.dataId))
            failures.append(
                QuantumFailure(
                    label=quantum.taskLabel or "",
                    data_id=dict(quantum.dataId),
                    exception=f"{info.className.rsplit('.', 1)[-1]}: {' '.join(info.message.split())}",
                    cause=cause,
                )
            )
    return failures


def failure_line(failures: Sequence[QuantumFailure]) -> str:
    """Return one line naming failed quanta, their data IDs and causes.

    Parameters
    ----------
    failures : `~collections.abc.Sequence` [`QuantumFailure`]
        Failed quanta.

    Returns
    -------
    line : `str`
        E.g. ``1 quantum failed: isr@instrument=VIRCAM,detector=1,exposure=5
        (MissingInputError: ...)``.
    """
    named = []
    for failure in failures[:_NAMED]:
        data_id = ",".join(f"{key}={value}" for key, value in failure.data_id.items())
        cause = f"; caused by {failure.cause}" if failure.cause else ""
        named.append(f"{failure.label}@{data_id} ({failure.exception}{cause})")
    more = f"; and {len(failures) - _NAMED} more (see the log above)" if len(failures) > _NAMED else ""
    count = "1 quantum" if len(failures) == 1 else f"{len(failures)} quanta"
    return f"{count} failed: {'; '.join(named)}{more}"


def _tracebacks(log: Path) -> list[tuple[str, str]]:
    """Return the message and traceback of each quantum failure the
    executor logged (``<quantum ID> (<label>@<data ID>) failed; ...``)."""
    found: list[tuple[str, str]] = []
    if not log.is_file():
        return found
    with log.open() as stream:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            message = record.get("message", "") if isinstance(record, dict) else ""
            if record.get("exc_info") and ") failed; processing will continue" in message:
                found.append((message, record["exc_info"]))
    return found


def _traceback_of(tracebacks: list[tuple[str, str]], label: str, data_id: dict[str, int | str]) -> str:
    """Return the logged traceback of a quantum's failure, or an empty string."""
    for message, traceback in tracebacks:
        head = message.split(") failed; ", 1)[0]
        if f"({label}@" in head and all(
            f"{key}: {value!r}," in head or head.endswith(f"{key}: {value!r}}}")
            for key, value in data_id.items()
        ):
            return traceback
    return ""


def _first_of_chain(traceback: str) -> str | None:
    """Return the first line of the first exception of a formatted chain, or
    `None` if the traceback is not of a chain."""
    if not any(marker in traceback for marker in _CHAINED):
        return None
    for line in traceback.splitlines():
        if line.strip() and not line[0].isspace() and not line.startswith("Traceback"):
            return " ".join(line.split())
    return None
