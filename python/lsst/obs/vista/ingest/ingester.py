"""Ingest of reduced products into a butler repository, as the dataset policy
declares them.

The work is split so that only the parent process touches the registry:

1. `find_files` lists the regular files under the given paths (other
   entries are reported and never opened) and `discover` classifies them
   by name.
2. Each main file (stack, tile) is read with its companions by `read_unit`,
   in worker processes when ``processes > 1``; results stream back in order.
3. The parent checks each unit against the batch (duplicate exposures,
   companions claimed twice) and, in chunks, against the repository (known
   detectors and filters, datasets already present), then writes the chunk:
   dimension records and datasets of every file of the chunk in one
   transaction.

Atomicity
    A main file and its companions form a *unit*: the unit's dimension
    records (day_obs, group, exposure, visit and its regions, visit
    definition and membership) and the datasets of its files are committed
    together or not at all.  A chunk of units is first written in a single
    transaction (fast); if that fails, each unit of the chunk is retried in
    its own transaction so that one failure cannot affect the others.
    Everything that can be checked before writing is, so a bad file is
    rejected before anything of it reaches the repository.  A bad companion
    does not stop its main file (the stack is still usable without its
    confidence map); a bad main file takes its companions with it, since
    they have no exposure to belong to.
Re-running
    Dataset IDs are derived from data ID, dataset type and run, and a file
    whose datasets are all in the run already, with the same content, is
    skipped and counted, so ingesting the same files again changes nothing.
    A file with other content for data IDs already ingested (a reprocessed
    stack) is refused, or replaces the datasets if asked to.
Interruption
    Writes hold the repository's write lock (`WriteGuard`), so concurrent
    ingests into one repository take turns, and the files a killed ingest
    left in the datastore are removed by the next one.  ``move`` copies the
    files and deletes the originals only once their datasets are committed,
    so that no kill can leave a file's only copy unreferenced.
"""

from __future__ import annotations

__all__ = ("ProductIngester",)

import contextlib
import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from lsst.daf.butler import (
    Butler,
    CollectionType,
    DataCoordinate,
    DatasetIdGenEnum,
    DatasetRef,
    FileDataset,
)
from lsst.utils import doImportType
from lsst.utils.logging import PeriodicLogger, getLogger

from ..messages import error_line
from .content import content_difference
from .discovery import Discovery, discover
from .guard import WriteGuard
from .pairing import describe_dataset
from .policy import IngestPolicy, ProductPolicy, policy_for_instrument
from .reading import ProductFile, ReadFailure
from .report import IngestReport
from .units import Candidate, UnitRead, failed_main_cause, read_unit
from .walk import FoundFiles, find_files

_LOG = getLogger("lsst.obs.vista.ingest")

_DIMENSION_ELEMENTS = (
    "day_obs",
    "group",
    "exposure",
    "visit",
    "visit_definition",
    "visit_system_membership",
    "visit_detector_region",
)
"""Elements a unit writes, in foreign-key order."""


class _Unit:
    """A main file with the companions that go with it, ready to write."""

    def __init__(self, main: ProductFile, companions: list[ProductFile], warnings: list[str]) -> None:
        self.main = main
        self.companions = companions
        self.warnings = warnings
        assert main.records is not None, "main products always carry records"
        self.records = main.records

    @property
    def files(self) -> list[ProductFile]:
        return [self.main, *self.companions]


class _Plan:
    """What a chunk writes for one unit: its new files, and the datasets
    those replace."""

    def __init__(
        self, unit: _Unit, files: list[ProductFile], replaced: list[DatasetRef], causes: dict[Path, str]
    ) -> None:
        self.unit = unit
        self.files = files
        self.replaced = replaced
        self.causes = causes
        """Why each file that replaces datasets does so."""


class ProductIngester:
    """Ingest reduced products (files and directory trees) into a butler.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the target repository.
    instrument : `str`, optional
        Butler name of the instrument whose dataset policy applies.
    transfer : `str`, optional
        Transfer mode for the files (see `lsst.daf.butler.Butler.ingest`):
        ``copy`` (the default) keeps the repository independent of the
        files; ``move`` copies them and deletes each original once its
        datasets are committed; ``direct``, ``symlink``, ``relsymlink``,
        ``hardlink``, ``link`` and ``auto`` (a link) make the datasets the
        files themselves, so that editing a file changes its datasets.
    replace : `bool`, optional
        Whether a file with other content than the one its data IDs were
        ingested from replaces those datasets (and its exposure's dimension
        records); by default it is refused.
    processes : `int`, optional
        Number of processes that read headers; the registry is only ever
        written by this process.
    chunk_size : `int`, optional
        Number of units (main file and companions) written per transaction.
    progress_interval : `float`, optional
        Seconds between progress lines.
    """

    def __init__(
        self,
        butler: Butler,
        *,
        instrument: str = "VIRCAM",
        transfer: str = "copy",
        replace: bool = False,
        processes: int = 1,
        chunk_size: int = 50,
        progress_interval: float = 10.0,
    ) -> None:
        self.butler = butler
        self.policy: IngestPolicy = policy_for_instrument(instrument)
        self.transfer = transfer
        self.replace = replace
        self.processes = processes
        self.chunk_size = chunk_size
        self.progress_interval = progress_interval
        self._prepared = False
        self._detectors: frozenset[int] = frozenset()
        self._filters: frozenset[str] = frozenset()
        self._guard = WriteGuard(butler, self.policy.run)

    def run(self, paths: Iterable[str | Path] | FoundFiles) -> IngestReport:
        """Ingest the product files among ``paths``.

        Parameters
        ----------
        paths : iterable [`str` or `pathlib.Path`], or `FoundFiles`
            Files and directories (searched recursively, following symbolic
            links), or the files `find_files` found under them.  Only
            regular files are read; other entries are reported and passed
            over unopened.

        Returns
        -------
        report : `IngestReport`
            What happened to each file; failures and warnings have already
            been logged.
        """
        start = time.perf_counter()
        found = paths if isinstance(paths, FoundFiles) else find_files(paths)
        discovery = discover(self.policy, found)
        report = IngestReport()
        for path, entry in discovery.skipped.items():
            report.pass_over(path, entry.kind, entry.message)
        for path, cause in discovery.rejected.items():
            report.fail(path, cause)
        if discovery.ignored:
            _LOG.info("Ignoring %d files whose names match no product of the policy.", discovery.ignored)
        n_main = len(discovery.main)
        if not (discovery.main or discovery.companions or discovery.rejected):
            # Most often the wrong directory: an error, so that scripts notice.
            for path in found.given:
                report.fail(path, f"no {self.policy.instrument} product files (searched recursively)")
        _LOG.info(
            "Found %d %s files and %d companion files.",
            n_main,
            "/".join(p.name for p in self.policy.main_products),
            len(discovery.companions),
        )
        progress = PeriodicLogger(_LOG, interval=self.progress_interval)
        claimed: dict[Path, Path] = {}
        exposures: dict[int, Path] = {}
        pending: list[_Unit] = []
        with self._reader() as read:
            for n_read, unit in enumerate(read(discovery.main), start=1):
                ready = self._check_unit(unit, discovery, claimed, exposures, report)
                if ready is not None:
                    pending.append(ready)
                if len(pending) >= self.chunk_size:
                    self._write(pending, report)
                    pending = []
                elapsed = time.perf_counter() - start
                progress.log(
                    "Read %d/%d main files; %d files ingested, %d skipped, %d failed (%.1f main files/s).",
                    n_read,
                    n_main,
                    len(report.ingested),
                    len(report.skipped),
                    len(report.failed),
                    n_read / elapsed,
                )
        if pending:
            self._write(pending, report)
        for path, candidate in discovery.companions.items():
            if path not in claimed:
                report.fail(path, self._orphan_cause(candidate))
        summary = report.summary()
        _LOG.info("%s%s (%.1f s).", summary[0].upper(), summary[1:], time.perf_counter() - start)
        return report

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Callable[[Sequence[Candidate]], Iterable[UnitRead]]]:
        """Yield a function that reads units, in order, in worker processes
        if asked for."""
        task = partial(read_unit, self.policy.instrument)
        if self.processes <= 1:
            yield lambda candidates: map(task, candidates)
            return
        context = multiprocessing.get_context(_start_method())
        with context.Pool(self.processes) as pool:
            yield lambda candidates: pool.imap(task, candidates, chunksize=4)

    def _check_unit(
        self,
        unit: UnitRead,
        discovery: Discovery,
        claimed: dict[Path, Path],
        exposures: dict[int, Path],
        report: IngestReport,
    ) -> _Unit | None:
        """Check a unit against the rest of the batch; return it ready to
        write, or `None` if its main file failed."""
        main_path = unit.candidate.path
        main = unit.main
        cause = main.cause if isinstance(main, ReadFailure) else None
        if isinstance(main, ProductFile):
            assert main.records is not None
            first = exposures.setdefault(main.records.exposure_id, main_path)
            if first != main_path:
                cause = f"exposure {main.records.exposure_id} is already defined by {first} in this batch"
        if cause is not None:
            report.fail(main_path, cause)
        companions: list[ProductFile] = []
        warnings: list[str] = list(unit.warnings)
        for product_name, companion in unit.companions.items():
            owner = claimed.setdefault(companion.path, main_path)
            if owner != main_path:
                warnings.append(f"its {product_name} {companion.path.name} already belongs to {owner.name}")
            elif cause is not None:
                # Companions the user did not ask for are not worth a line.
                if companion.path in discovery.companions:
                    report.fail(companion.path, failed_main_cause(unit.candidate.product))
            elif isinstance(companion, ReadFailure):
                report.fail(companion.path, companion.cause)
            else:
                companions.append(companion)
        if cause is not None:
            return None
        assert isinstance(main, ProductFile)
        for product_name, looked_for in unit.missing.items():
            if self.policy.products[product_name].warn_if_missing:
                warnings.append(f"no {product_name} ({looked_for}); ingested without it")
        return _Unit(main, companions, warnings)

    def _orphan_cause(self, candidate: Candidate) -> str:
        product = self.policy.products[candidate.product]
        assert product.companion_of is not None
        main = self.policy.products[product.companion_of]
        return (
            f"not ingested: no {main.name} in this batch to pair it with "
            f"(looked for {main.file_names(candidate.stem)[0]} and variants)"
        )

    def _prepare_repository(self) -> None:
        """Register the instrument, dataset types and collections (all
        idempotent) and learn the detectors and filters."""
        registry = self.butler.registry
        instrument = doImportType(self.policy.instrument_class)()
        instrument.register(registry)
        for product in self.policy.products.values():
            registry.registerDatasetType(product.dataset_type(self.butler.dimensions))
        self.butler.collections.register(self.policy.run)
        self.butler.collections.register(self.policy.chain, CollectionType.CHAINED)
        if self.policy.run not in self.butler.collections.get_info(self.policy.chain).children:
            self.butler.collections.extend_chain(self.policy.chain, self.policy.run)
        name = self.policy.instrument
        self._detectors = frozenset(r.id for r in registry.queryDimensionRecords("detector", instrument=name))
        self._filters = frozenset(
            r.name for r in registry.queryDimensionRecords("physical_filter", instrument=name)
        )
        self._prepared = True

    def _write(self, units: list[_Unit], report: IngestReport) -> None:
        """Write a chunk of units: what is new, in one transaction, or unit
        by unit if that fails."""
        with self._guard.writing():
            if not self._prepared:
                self._prepare_repository()
            units = [unit for unit in units if self._check_against_registry(unit, report)]
            existing = self._existing_datasets(units)
            plans = [plan for unit in units if (plan := self._plan(unit, existing, report)) is not None]
            replaced = [ref for plan in plans for ref in plan.replaced]
            if replaced:
                # Removed first, and committed: the new files take the same
                # dataset IDs and datastore paths.  An interruption before
                # the new datasets are committed leaves them absent, which a
                # re-run completes.
                self.butler.pruneDatasets(replaced, disassociate=True, unstore=True, purge=True)
            try:
                with self.butler.transaction():
                    self._write_plans(plans)
            except Exception as err:
                _LOG.verbose(
                    "Writing %d units together failed (%s); writing them one by one.", len(plans), err
                )
                for plan in plans:
                    try:
                        with self.butler.transaction():
                            self._write_plans([plan])
                    except Exception as unit_err:
                        for file in plan.files:
                            report.fail(file.path, f"could not be written: {error_line(unit_err)}")
                    else:
                        self._record_success(plan, report)
            else:
                for plan in plans:
                    self._record_success(plan, report)

    def _check_against_registry(self, unit: _Unit, report: IngestReport) -> bool:
        """Check the detectors and filter of a unit against the registry."""
        cause = None
        unknown = sorted(set(unit.main.datasets) - {None} - self._detectors)
        if unknown:
            cause = f"unknown detector(s) {', '.join(map(str, unknown))} for {self.policy.instrument}"
        elif unit.records.exposure["physical_filter"] not in self._filters:
            cause = f"unknown physical filter {unit.records.exposure['physical_filter']!r}"
        if cause is None:
            return True
        report.fail(unit.main.path, cause)
        for companion in unit.companions:
            report.fail(companion.path, failed_main_cause(unit.main.product))
        return False

    def _existing_datasets(self, units: list[_Unit]) -> dict[tuple[str, int, int | None], DatasetRef]:
        """Return the datasets of the units' exposures that are already in
        the run, keyed by ``(dataset type, exposure, detector)``."""
        exposures = sorted({unit.records.exposure_id for unit in units})
        names = sorted({file.product for unit in units for file in unit.files})
        existing: dict[tuple[str, int, int | None], DatasetRef] = {}
        for batch in itertools.batched(exposures, 500):
            for name in names:
                refs = self.butler.query_datasets(
                    name,
                    collections=self.policy.run,
                    data_id={"instrument": self.policy.instrument},
                    where="exposure IN (:exposures)",
                    bind={"exposures": batch},
                    limit=None,
                    explain=False,
                )
                existing.update(
                    ((name, ref.dataId["exposure"], ref.dataId.get("detector")), ref) for ref in refs
                )
        return existing

    def _plan(
        self, unit: _Unit, existing: dict[tuple[str, int, int | None], DatasetRef], report: IngestReport
    ) -> _Plan | None:
        """Return what to write of a unit, or `None` if nothing; record its
        files that are in the run already as skipped (the same content) or
        failed (other content, or only some of their datasets there, unless
        replacing).  A refused main file takes its new companions with it."""
        exposure = unit.records.exposure_id
        files: list[ProductFile] = []
        replaced: list[DatasetRef] = []
        causes: dict[Path, str] = {}
        main_refused = False
        for file in unit.files:
            present = [
                ref
                for key in file.datasets
                if (ref := existing.get((file.product, exposure, key))) is not None
            ]
            cause = self._conflict(file, present, exposure) if present else None
            if present and cause is None:
                report.skipped.append(file.path)
                if self.transfer == "move" and not self._is_stored_file(file, present[0]):
                    # The rest of a move whose datasets were committed.
                    file.path.unlink()
            elif main_refused:
                report.fail(file.path, failed_main_cause(unit.main.product))
            elif cause is None:
                files.append(file)
            elif self.replace:
                files.append(file)
                replaced.extend(present)
                causes[file.path] = cause
            else:
                report.fail(file.path, f"{cause}; --replace replaces what was ingested")
                main_refused = file is unit.main
        return None if main_refused or not files else _Plan(unit, files, replaced, causes)

    def _conflict(self, file: ProductFile, present: list[DatasetRef], exposure: int) -> str | None:
        """Return why a file whose datasets are (some of them) in the run
        already cannot be skipped, or `None` if it holds what the run has."""
        product = self.policy.products[file.product]
        if len(present) < len(file.datasets):
            names = ", ".join(describe_dataset(product, ref.dataId.get("detector")) for ref in present)
            return f"{file.product} of {names} for exposure {exposure} are already in {self.policy.run}"
        stored = self.butler.getURI(present[0])
        difference = content_difference(file.path, stored)
        if difference is None:
            return None
        other = stored.ospath if stored.isLocal else str(stored)
        return f"{file.product} of exposure {exposure} was ingested from {other}, {difference}"

    def _is_stored_file(self, file: ProductFile, ref: DatasetRef) -> bool:
        """Return whether a file is the datastore's file of a dataset (was
        ingested in place or linked), not a copy."""
        stored = self.butler.getURI(ref)
        return stored.isLocal and Path(stored.ospath).exists() and Path(stored.ospath).samefile(file.path)

    def _write_plans(self, plans: list[_Plan]) -> None:
        """Insert the dimension records and datasets of ``plans`` (inside the
        caller's transaction)."""
        registry = self.butler.registry
        for replace in (False, True):
            rows: dict[str, list[dict[str, Any]]] = {element: [] for element in _DIMENSION_ELEMENTS}
            for plan in plans:
                if bool(plan.replaced) == replace:
                    for element, element_rows in plan.unit.records.element_rows().items():
                        rows[element].extend(element_rows)
            for element in _DIMENSION_ELEMENTS:
                if not rows[element]:
                    continue
                if replace:
                    # A reprocessed file's exposure may differ in its
                    # records (time, pointing, regions).
                    registry.insertDimensionData(element, *rows[element], replace=True)
                else:
                    # Records already present (a companion added to an
                    # exposure ingested earlier, a day or group shared with
                    # earlier exposures) are left as they are.
                    registry.insertDimensionData(element, *rows[element], skip_existing=True)
        datasets = [
            self._file_dataset(file, plan.unit.records.exposure_id) for plan in plans for file in plan.files
        ]
        if datasets:
            # A move is a copy until the datasets are committed.
            self.butler.ingest(*datasets, transfer="copy" if self.transfer == "move" else self.transfer)

    def _file_dataset(self, file: ProductFile, exposure: int) -> FileDataset:
        product: ProductPolicy = self.policy.products[file.product]
        dataset_type = product.dataset_type(self.butler.dimensions)
        refs = []
        for detector in file.datasets:
            values: dict[str, Any] = {"instrument": self.policy.instrument, "exposure": exposure}
            if detector is not None:
                values["detector"] = detector
            data_id = DataCoordinate.standardize(values, dimensions=dataset_type.dimensions)
            refs.append(
                DatasetRef(
                    dataset_type,
                    data_id,
                    run=self.policy.run,
                    id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN,
                )
            )
        return FileDataset(path=file.path, refs=refs, formatter=product.formatter)

    def _record_success(self, plan: _Plan, report: IngestReport) -> None:
        unit = plan.unit
        if unit.main in plan.files:
            for warning in unit.warnings:
                report.warn(unit.main.path, warning)
        for file in plan.files:
            if file.path in plan.causes:
                report.replace(file.path, plan.causes[file.path])
            report.ingested.append(file.path)
            report.n_datasets += len(file.datasets)
            if self.transfer == "move":
                file.path.unlink()
        report.exposures.add(unit.records.exposure_id)


def _start_method() -> str:
    """Return how to start the header-reading worker processes.

    ``fork`` starts a worker at once with every module imported, where
    ``spawn`` re-imports the stack (about 2 s per worker, longer than reading
    a hundred stacks).  Forking is only safe from a single-threaded process
    (a lock held by another thread would stay locked in the child); the
    children inherit the registry's database connection but never use it,
    and leave without running any clean-up.
    """
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"
