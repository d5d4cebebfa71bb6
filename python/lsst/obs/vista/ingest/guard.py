"""Keeping a repository consistent when ingests run at the same time or are
killed: one writer at a time, and the files a killed writer left removed.

Registry writes are transactions, so a killed ingest leaves no rows behind;
the files it was putting into the datastore are outside the transaction.  A
process killed while copying leaves a partial ``*.transfer-tmp`` file, and
one killed after the copy but before the commit leaves complete copies or
links that no dataset refers to.  Both would make a re-run fail ("Another
process is writing to ...", "Destination path ... already exists").

`WriteGuard` therefore holds an exclusive lock (``flock``) on the datastore's
root directory while it writes, and keeps a marker file there for as long as
a write is under way.  The lock is released by the kernel when its holder
dies, so a marker found by the next holder means the previous write was
interrupted: the files under the run's directory that no dataset of the run
refers to are then removed.  They are never the only copy of anything: files
reach the datastore as copies or links of files that stay where they are
until their datasets are committed.

The lock serialises the processes that use this guard, on one machine (or
on a file system whose ``flock`` locks are shared); the datastore's root must
be a local directory for it to apply.
"""

from __future__ import annotations

__all__ = ("MARKER_NAME", "WriteGuard")

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from lsst.daf.butler import Butler, CollectionType, MissingCollectionError
from lsst.utils.logging import getLogger

_LOG = getLogger("lsst.obs.vista.ingest")

MARKER_NAME = ".obs_vista_ingest_in_progress"
"""Name of the marker file, in the datastore's root, that exists while an
ingest writes."""


class WriteGuard:
    """Serialise the writes of ingests into one repository and clean up
    after an interrupted one.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the repository.
    run : `str`
        Run the ingest writes its datasets to.
    """

    def __init__(self, butler: Butler, run: str) -> None:
        self.butler = butler
        self.run = run
        roots = [root for root in butler.get_datastore_roots().values() if root is not None]
        self.root = Path(roots[0].ospath) if len(roots) == 1 and roots[0].isLocal else None
        """Local root directory of the datastore, or `None` if there is no
        single local one (nothing is then locked or cleaned)."""

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the repository's write lock while the block runs.

        The lock is waited for if another ingest holds it.  If the previous
        holder was interrupted, its leftover files are removed first.  The
        marker stays if the block raises, so that the next write checks for
        leftovers again.
        """
        if self.root is None or not self.root.is_dir():
            yield
            return
        descriptor = os.open(self.root, os.O_RDONLY)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _LOG.info("Waiting for another ingest into %s to finish.", self.root)
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError as err:
                # Some network file systems have no locks; the ingest goes on
                # as it would without this guard.
                _LOG.verbose("Cannot lock %s (%s); writing without the lock.", self.root, err)
            marker = self.root / MARKER_NAME
            if marker.exists():
                self._recover(marker)
            marker.write_text(json.dumps({"run": self.run, "pid": os.getpid()}))
            yield
            marker.unlink()
        finally:
            # Closing the only descriptor releases the lock.
            os.close(descriptor)

    def _recover(self, marker: Path) -> None:
        """Remove the files an interrupted ingest left in its run's
        directory."""
        try:
            run = json.loads(marker.read_text())["run"]
        except (ValueError, KeyError, TypeError):
            run = self.run
        leftovers = self.unreferenced_files(run)
        for path in leftovers:
            path.unlink()
        if leftovers:
            _LOG.warning(
                "Removed %d file%s left in %s by an interrupted ingest.",
                len(leftovers),
                "" if len(leftovers) == 1 else "s",
                self.root,
            )
        marker.unlink()

    def unreferenced_files(self, run: str) -> list[Path]:
        """Return the files under a run's directory of the datastore that no
        dataset of the run refers to.

        Parameters
        ----------
        run : `str`
            Name of the run; its files are under the directory of that name
            (the default file template), whose sub-directories named after
            other runs are left out.

        Returns
        -------
        paths : `list` [`pathlib.Path`]
            The files, sorted.
        """
        assert self.root is not None
        directory = self.root / run
        if not directory.is_dir():
            return []
        nested = {
            self.root / name
            for name in self.butler.collections.query(f"{run}/*", CollectionType.RUN)
            if name != run
        }
        try:
            refs = self.butler.query_all_datasets(run, find_first=False, limit=None)
        except MissingCollectionError:
            refs = []
        referenced: set[Path] = set()
        for uris in self.butler.get_many_uris(refs).values():
            if uris.primaryURI is not None:
                referenced.add(Path(uris.primaryURI.ospath))
            referenced.update(Path(uri.ospath) for uri in uris.componentURIs.values())
        found = []
        for parent, dirnames, filenames in os.walk(directory):
            dirnames[:] = [name for name in dirnames if Path(parent, name) not in nested]
            found.extend(Path(parent, name) for name in filenames)
        return sorted(path for path in found if path not in referenced)
