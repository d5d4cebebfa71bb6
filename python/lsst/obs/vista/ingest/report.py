"""What an ingest did, file by file, and how it is told to the user."""

from __future__ import annotations

__all__ = ("IngestReport",)

import dataclasses
from pathlib import Path

from lsst.utils.logging import getLogger

_LOG = getLogger("lsst.obs.vista.ingest")


@dataclasses.dataclass
class IngestReport:
    """Outcome of each file of an ingest.

    Every failure and warning is logged (logger ``lsst.obs.vista.ingest``)
    the moment it is recorded, as one line that starts with the file's path.
    """

    ingested: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)
    """Files whose datasets were already in the run."""

    failed: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Files not ingested, with the cause."""

    replaced: list[Path] = dataclasses.field(default_factory=list)
    """Files ingested in place of other content for the same datasets (also
    in ``ingested``)."""

    warnings: dict[Path, list[str]] = dataclasses.field(default_factory=dict)

    passed_over: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Entries under the given directories that are not regular files (or
    links that lead to none), passed over unopened, with their kind
    (``FIFO``, ``symlink loop`` ...)."""

    n_datasets: int = 0
    exposures: set[int] = dataclasses.field(default_factory=set)
    """Exposures whose datasets were ingested."""

    @property
    def ok(self) -> bool:
        """Whether every file given was ingested or already present."""
        return not self.failed

    def fail(self, path: Path, cause: str) -> None:
        """Record and log a file that is not ingested.

        Parameters
        ----------
        path : `pathlib.Path`
            The file.
        cause : `str`
            Why, in one line.
        """
        self.failed[path] = cause
        _LOG.error("%s: %s", path, cause)

    def replace(self, path: Path, reason: str) -> None:
        """Record and log a file that replaces datasets ingested before.

        Parameters
        ----------
        path : `pathlib.Path`
            The file.
        reason : `str`
            What it replaces, in one line.
        """
        self.replaced.append(path)
        _LOG.info("%s: replaced: %s", path, reason)

    def warn(self, path: Path, message: str) -> None:
        """Record and log a warning about a file.

        Parameters
        ----------
        path : `pathlib.Path`
            The file.
        message : `str`
            The warning, in one line.
        """
        self.warnings.setdefault(path, []).append(message)
        _LOG.warning("%s: %s", path, message)

    def pass_over(self, path: Path, kind: str, message: str) -> None:
        """Record and log a directory entry passed over without opening it.

        Parameters
        ----------
        path : `pathlib.Path`
            The entry.
        kind : `str`
            What it is, as the summary counts it (``FIFO``).
        message : `str`
            Why it is passed over, in one line.
        """
        self.passed_over[path] = kind
        _LOG.warning("%s: %s", path, message)

    def summary(self) -> str:
        """Return the closing line of the ingest.

        Returns
        -------
        line : `str`
            Counts of ingested, skipped and failed files, and of the
            entries passed over by kind.
        """
        parts = []
        if self.ingested or not (self.skipped or self.failed):
            parts.append(
                f"ingested {_count(len(self.ingested), 'file')} "
                f"({_count(self.n_datasets, 'dataset')} of {_count(len(self.exposures), 'exposure')})"
            )
        if self.replaced:
            parts.append(f"replaced the datasets of {_count(len(self.replaced), 'file')}")
        if self.skipped:
            parts.append(f"skipped {_count(len(self.skipped), 'file')} already ingested")
        if self.failed:
            parts.append(f"{_count(len(self.failed), 'file')} failed")
        if self.passed_over:
            kinds = sorted(set(self.passed_over.values()))
            counts = ", ".join(_count(list(self.passed_over.values()).count(kind), kind) for kind in kinds)
            parts.append(f"skipped {_count(len(self.passed_over), 'path')}: {counts}")
        return "; ".join(parts)


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"
