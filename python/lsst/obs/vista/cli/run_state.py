"""What an output collection of ``processCcd.py`` holds, so that re-running
the same command resumes whatever stopped it (a signal, a full disk, a failed
quantum).

A quantum has finished when its ``<label>_metadata`` dataset exists: the
executor writes it after all the quantum's other outputs.  A quantum that
stopped before then may have written some outputs (``calibrateImage`` writes
its background before its image); those are removed, registered or not, so
that the output chain holds finished quanta only and a re-run, which skips
the finished ones, never finds an output in its way nor lists a dataset
twice.
"""

from __future__ import annotations

__all__ = ("finished_data_ids", "output_runs", "remove_unfinished_outputs")

from collections import defaultdict
from collections.abc import Sequence

from lsst.daf.butler import (
    Butler,
    CollectionType,
    DatasetRef,
    MissingCollectionError,
    MissingDatasetTypeError,
)
from lsst.pipe.base import PipelineGraph
from lsst.utils.logging import getLogger

from ..ingest.guard import WriteGuard
from .sharded_run import DataId

_LOG = getLogger("lsst.obs.vista.processCcd")


def output_runs(butler: Butler, output: str) -> list[str]:
    """Return the RUN collections of an output chain that runs into it made
    (named ``<output>/...``), leaving out its inputs.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    output : `str`
        Output CHAINED collection; it need not exist.

    Returns
    -------
    runs : `list` [`str`]
    """
    try:
        children = butler.collections.get_info(output).children
    except MissingCollectionError:
        return []
    runs = butler.collections.query(list(children), CollectionType.RUN, flatten_chains=True)
    return [run for run in runs if run.startswith(f"{output}/")]


def finished_data_ids(butler: Butler, graph: PipelineGraph, output: str, where: str) -> set[DataId]:
    """Return the data IDs for which every task of a pipeline has finished in
    an output collection.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    graph : `lsst.pipe.base.PipelineGraph`
        The pipeline; its tasks' quanta must relate to ``exposure`` and
        ``detector``.
    output : `str`
        Output collection; it need not exist.
    where : `str`
        Data-ID query expression.

    Returns
    -------
    data_ids : `set` [`tuple` [`int`, `int`]]
        ``(exposure, detector)`` pairs.
    """
    try:
        with butler.query() as query:
            for task in graph.tasks.values():
                query = query.join_dataset_search(task.metadata_output.dataset_type_name, [output])
            rows = query.where(where).data_ids(["exposure", "detector"])
            return {(row["exposure"], row["detector"]) for row in rows}
    except (MissingCollectionError, MissingDatasetTypeError):
        return set()


def remove_unfinished_outputs(butler: Butler, graph: PipelineGraph, runs: Sequence[str]) -> int:
    """Remove from runs the outputs of quanta that did not finish, and the
    files under the runs' directories that no dataset refers to.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the repository.
    graph : `lsst.pipe.base.PipelineGraph`
        The pipeline that wrote the runs.
    runs : `~collections.abc.Sequence` [`str`]
        RUN collections written by the pipeline.

    Returns
    -------
    removed : `int`
        Number of datasets and files removed.
    """
    removed = 0
    for run in runs:
        by_type: dict[str, list[DatasetRef]] = defaultdict(list)
        try:
            refs = butler.query_all_datasets(run, find_first=False, limit=None)
        except MissingCollectionError:
            # A run whose outputs were never registered: only files to remove.
            refs = []
        for ref in refs:
            by_type[ref.datasetType.name].append(ref)
        unfinished: list[DatasetRef] = []
        for task in graph.tasks.values():
            finished = {
                ref.dataId.required_values for ref in by_type.get(task.metadata_output.dataset_type_name, ())
            }
            for edge in task.iter_all_outputs():
                unfinished.extend(
                    ref
                    for ref in by_type.get(edge.parent_dataset_type_name, ())
                    if ref.dataId.subset(task.dimensions).required_values not in finished
                )
        if unfinished:
            butler.pruneDatasets(unfinished, disassociate=True, unstore=True, purge=True)
        guard = WriteGuard(butler, run)
        leftovers = guard.unreferenced_files(run) if guard.root is not None else []
        for path in leftovers:
            path.unlink()
        if unfinished or leftovers:
            _LOG.info(
                "Removed %d outputs of unfinished quanta and %d unregistered files from %s.",
                len(unfinished),
                len(leftovers),
                run,
            )
        removed += len(unfinished) + len(leftovers)
    return removed
