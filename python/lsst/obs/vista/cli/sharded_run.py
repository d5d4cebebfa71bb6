"""Running one pipeline as several concurrent single-process runs, each on a
disjoint group of data IDs writing its own RUN collection, chained afterwards
into one output collection.

``pipetask run -j N`` starts a process for every quantum, which costs more
than a single-detector quantum saves; N single-process runs pay the start-up
(imports, registry connection, quantum-graph build) once each.  Each group
runs through a quantum-backed butler (``pipetask qgraph``, ``pre-exec-init-qbb``,
``run-qbb``, then ``butler transfer-from-graph``): concurrent ``pipetask run``
processes on one SQLite registry wait for each other's writes (an isr quantum
of a full-size detector took 2.9 s instead of 1.5 s), while ``run-qbb`` writes
only files and the registry is updated once per group at the end.  The four
commands run in turn in one process per group
(`lsst.obs.vista.cli.group_steps`), which imports the middleware once
instead of four times.
"""

from __future__ import annotations

__all__ = (
    "DataId",
    "GroupFailedError",
    "chain_definition",
    "query_data_ids",
    "run_concurrently",
    "split_balanced",
    "where_for_group",
)

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import TextIO

from lsst.utils.threads import set_thread_envvars

from . import group_steps
from .signal_forwarding import SignalForwarder

DataId = tuple[int, int]
"""``(exposure, detector)`` of one isr quantum."""


class GroupFailedError(RuntimeError):
    """Raised when one or more groups' ``pipetask run`` exited non-zero.

    Parameters
    ----------
    failed : `~collections.abc.Sequence` [`tuple` [`str`, `int`]]
        ``(group name, exit status)`` of each failed group.
    """

    def __init__(self, failed: Sequence[tuple[str, int]]) -> None:
        self.failed = list(failed)
        names = ", ".join(f"{name} (exit status {status})" for name, status in self.failed)
        super().__init__(f"pipetask run failed for group {names}")


def query_data_ids(repo: str, pipeline: Path, inputs: Sequence[str], where: str) -> list[DataId]:
    """Return the data IDs of the pipeline's first task that have inputs.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    pipeline : `pathlib.Path`
        Pipeline file; its first task must have ``exposure`` and ``detector``
        dimensions (the instruments' isr tasks do).
    inputs : `~collections.abc.Sequence` [`str`]
        Collections searched for the task's inputs.
    where : `str`
        Data-ID query expression.

    Returns
    -------
    data_ids : `list` [`tuple` [`int`, `int`]]
        Sorted ``(exposure, detector)`` pairs with all required regular
        inputs of the first task.
    """
    from lsst.daf.butler import Butler
    from lsst.pipe.base import Pipeline

    with Butler.from_config(repo) as butler:
        graph = Pipeline.from_uri(str(pipeline)).to_graph()
        graph.resolve(butler.registry)
        task = next(iter(graph.tasks.values()))
        connections = task.get_connections()
        required = {
            edge.parent_dataset_type_name
            for name, edge in task.inputs.items()
            if getattr(connections, name).minimum > 0
        }
        found: set[DataId] | None = None
        for name in sorted(required):
            refs = butler.query_datasets(
                name, collections=list(inputs), where=where, limit=None, explain=False
            )
            ids = {(ref.dataId["exposure"], ref.dataId["detector"]) for ref in refs}
            found = ids if found is None else found & ids
    return sorted(found or ())


def split_balanced(data_ids: Sequence[DataId], groups: int) -> list[list[DataId]]:
    """Split sorted data IDs into contiguous groups whose sizes differ by at most one.

    Parameters
    ----------
    data_ids : `~collections.abc.Sequence` [`tuple` [`int`, `int`]]
        Data IDs, sorted so that one exposure's detectors are contiguous.
    groups : `int`
        Number of groups wanted; fewer are returned if there are fewer data IDs.

    Returns
    -------
    groups : `list` [`list` [`tuple` [`int`, `int`]]]
        Non-empty, disjoint groups covering ``data_ids``.
    """
    groups = min(groups, len(data_ids))
    size, extra = divmod(len(data_ids), groups) if groups else (0, 0)
    result = []
    start = 0
    for k in range(groups):
        stop = start + size + (k < extra)
        result.append(list(data_ids[start:stop]))
        start = stop
    return result


def where_for_group(instrument: str, group: Sequence[DataId]) -> str:
    """Return the query expression selecting exactly ``group``'s data IDs.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument.
    group : `~collections.abc.Sequence` [`tuple` [`int`, `int`]]
        ``(exposure, detector)`` pairs, sorted.

    Returns
    -------
    where : `str`
        E.g. ``instrument='VIRCAM' AND (exposure=5 AND detector IN (1, 2))``.
    """
    clauses = []
    for exposure, members in groupby(group, key=lambda data_id: data_id[0]):
        detectors = ", ".join(str(detector) for _, detector in members)
        clauses.append(f"(exposure={exposure} AND detector IN ({detectors}))")
    return f"instrument={instrument!r} AND ({' OR '.join(clauses)})"


def chain_definition(repo: str, output: str, runs: Sequence[str], inputs: Sequence[str]) -> list[str]:
    """Return the children ``pipetask run -o`` would give the output chain.

    The new runs come first, then the existing chain's children (or, for a
    new chain, the input collections), chains flattened as pipetask does.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    output : `str`
        Output CHAINED collection, existing or not.
    runs : `~collections.abc.Sequence` [`str`]
        The new RUN collections.
    inputs : `~collections.abc.Sequence` [`str`]
        Input collections.

    Returns
    -------
    children : `list` [`str`]
    """
    from lsst.daf.butler import Butler, MissingCollectionError

    with Butler.from_config(repo) as butler:
        try:
            searched: Sequence[str] = butler.collections.get_info(output).children
        except MissingCollectionError:
            searched = inputs
        rest = butler.collections.query(list(searched), flatten_chains=True, include_chains=False)
    return [*runs, *rest]


def _forward(stream: TextIO, prefix: str, sink: TextIO, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sink.write(prefix + line)
            sink.flush()


def _run_group(
    steps: Sequence[list[str]],
    prefix: str,
    lock: threading.Lock,
    forwarder: SignalForwarder,
    env: Mapping[str, str],
    status: list[int],
) -> None:
    if forwarder.received is not None:
        # Stopped before the group started: there is nothing to register.
        return
    argv = [sys.executable, "-m", group_steps.__name__, *(shlex.join(step) for step in steps)]
    # The process inherits this thread's mask: a signal received while it
    # starts up waits until it handles it.
    signal.pthread_sigmask(signal.SIG_BLOCK, group_steps.STOP_SIGNALS)
    process = forwarder.popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    threads = [
        threading.Thread(target=_forward, args=(process.stdout, prefix, sys.stdout, lock)),
        threading.Thread(target=_forward, args=(process.stderr, prefix, sys.stderr, lock)),
    ]
    for thread in threads:
        thread.start()
    status[0] = forwarder.wait(process)
    for thread in threads:
        thread.join()


def run_concurrently(
    groups: Sequence[tuple[str, Sequence[list[str]]]],
    forwarder: SignalForwarder,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Run named groups of ``pipetask`` and ``butler`` commands concurrently,
    each group in one process, streaming their output line by line.

    A group's commands run in turn, in-process
    (`lsst.obs.vista.cli.group_steps`).  If one fails the group has failed
    and its remaining commands are skipped, except the last, which runs
    whenever the first succeeded (it keeps what the others produced).  A
    SIGTERM or SIGINT received is forwarded to the groups' processes: it
    stops a group's running command unless that is the last, which is left
    to finish, and, as a failure does, skips the remaining commands but the
    last; a group not yet started is not started.  Each line of a group's
    standard output and error is written to this process's standard output
    and error, prefixed with ``[NAME] ``.  The groups run with implicit
    threading (OpenBLAS, OpenMP, ...) limited to one thread, as pipetask's
    own ``-j N`` does for its workers: N single-threaded processes fill N
    cores.

    Parameters
    ----------
    groups : `~collections.abc.Sequence` [`tuple` [`str`, `~collections.abc.Sequence` [`list` [`str`]]]]
        ``(name, [argv, ...])`` of each group; each ``argv`` is a
        ``pipetask`` or ``butler`` command, the program's name first.
    forwarder : `~lsst.obs.vista.cli.signal_forwarding.SignalForwarder`
        Starts the groups' processes; active while this runs.
    environment : `~collections.abc.Mapping` [`str`, `str`], optional
        Variables set for the groups' processes besides this process's own.

    Raises
    ------
    GroupFailedError
        Raised, after all groups have finished, if any failed (or was
        stopped by a signal).
    """
    set_thread_envvars(1)
    env = {**os.environ, **(environment or {})}
    lock = threading.Lock()
    running = []
    for name, steps in groups:
        status = [0]
        thread = threading.Thread(target=_run_group, args=(steps, f"[{name}] ", lock, forwarder, env, status))
        thread.start()
        running.append((name, thread, status))
    failed = []
    for name, thread, status in running:
        thread.join()
        if status[0] != 0:
            failed.append((name, status[0]))
    if failed:
        raise GroupFailedError(failed)
