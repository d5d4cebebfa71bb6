"""One line naming the quanta a pipeline run failed and why, from the
execution reports ``pipetask run --summary FILE`` (and ``run-qbb``) write.

pipetask's own last line is the executor's generic ``MPGraphExecutorError:
One or more tasks failed during execution.``; the cause of each failure is
only in a traceback above it.
"""

from __future__ import annotations

__all__ = ("failure_line", "read_failures")

from collections.abc import Iterable, Sequence
from pathlib import Path

from lsst.pipe.base.quantum_reports import ExecutionStatus, QuantumReport, Report

_NAMED = 5
"""Failed quanta named in the line; the others are counted."""


def read_failures(summaries: Iterable[Path]) -> list[QuantumReport]:
    """Return the quanta that raised, from execution report files.

    Parameters
    ----------
    summaries : iterable [`pathlib.Path`]
        Report files; those not written (a run killed or failed before
        executing) are passed over.

    Returns
    -------
    failures : `list` [`lsst.pipe.base.quantum_reports.QuantumReport`]
        Failed quanta with their exceptions, in execution order; quanta
        skipped because an upstream quantum failed are left out.
    """
    failures = []
    for path in summaries:
        if not path.is_file():
            continue
        report = Report.model_validate_json(path.read_text())
        failures.extend(
            quantum
            for quantum in report.quantaReports
            if quantum.status is ExecutionStatus.FAILURE and quantum.exceptionInfo is not None
        )
    return failures


def failure_line(failures: Sequence[QuantumReport]) -> str:
    """Return one line naming failed quanta, their data IDs and causes.

    Parameters
    ----------
    failures : `~collections.abc.Sequence` [`lsst.pipe.base.quantum_reports.QuantumReport`]
        Failed quanta, each with its exception.

    Returns
    -------
    line : `str`
        E.g. ``1 quantum failed: isr@instrument=VIRCAM,detector=1,exposure=5
        (MissingInputError: ...)``.
    """
    named = []
    for quantum in failures[:_NAMED]:
        assert quantum.exceptionInfo is not None, "read_failures keeps quanta with exceptions only"
        data_id = ",".join(f"{key}={value}" for key, value in quantum.dataId.items())
        cause = " ".join(quantum.exceptionInfo.message.split())
        named.append(
            f"{quantum.taskLabel}@{data_id} ({quantum.exceptionInfo.className.rsplit('.', 1)[-1]}: {cause})"
        )
    more = f"; and {len(failures) - _NAMED} more (see the log above)" if len(failures) > _NAMED else ""
    count = "1 quantum" if len(failures) == 1 else f"{len(failures)} quanta"
    return f"{count} failed: {'; '.join(named)}{more}"
