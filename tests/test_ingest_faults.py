"""Ingest under faults: the default transfer, reprocessed files of the same
size, ``butler ingest-casu`` processes killed with SIGKILL at several points
and re-run, and two ingests into one SQLite repository at once.

Every repository is compared with a clean ingest of the same files: dataset
IDs and data IDs, every dimension record the ingest writes, and the checksum
of every file in the datastore, with no file that no dataset refers to.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import FITSFixedWarning
from click.testing import CliRunner
from lsst.daf.butler import Butler, CollectionType, DatasetRef, FileDataset
from lsst.resources import ResourcePath

from lsst.obs.vista.cli.commands import ingest_command
from lsst.obs.vista.ingest import ProductIngester
from lsst.obs.vista.ingest.content import checksum
from lsst.obs.vista.ingest.guard import MARKER_NAME
from lsst.obs.vista.sim import SimulatedStack, SimulationConfig, write_pawprint_stack

BUTLER = Path(sys.executable).parent / "butler"
RUN = "VIRCAM/raw/casu"
CHAIN = "VIRCAM/defaults"
DETECTOR_1 = {"instrument": "VIRCAM", "detector": 1}
KINDS = ("stack", "confidence", "catalog")
ELEMENTS = (
    "day_obs",
    "group",
    "exposure",
    "visit",
    "visit_definition",
    "visit_system_membership",
    "visit_detector_region",
)
CONFIG = SimulationConfig(size=64, detectors=(1, 2), seed=23, jitter=2.0)
N_STACKS = 4
BIG = 2
"""Index of the stack padded with zeros to take a few tenths of a second to
copy, so that a process can be caught in the middle of copying it."""
PADDING = 2880 * 20_000
"""Zero bytes after the last HDU of the big stack (a sparse file; FITS
allows padding after the last HDU)."""
TIMEOUT = 60.0
"""Seconds a killed-to-be ingest may take to reach its kill point."""


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[int, SimulatedStack]:
    """Four synthetic stacks with confidence maps and catalogues."""
    outdir = tmp_path_factory.mktemp("faults")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return {index: write_pawprint_stack(outdir, index, CONFIG) for index in range(N_STACKS)}


def stage(directory: Path, products: dict[int, SimulatedStack], indices=range(N_STACKS)) -> Path:
    """Copy products into ``directory``, the big stack padded (sparse)."""
    directory.mkdir(parents=True)
    for index in indices:
        for kind in KINDS:
            source = getattr(products[index], kind)
            shutil.copy(source, directory / source.name)
        if index == BIG:
            big = directory / products[index].stack.name
            os.truncate(big, big.stat().st_size + PADDING)
    return directory


def create_repo(root: Path) -> Path:
    Butler.makeRepo(str(root))
    return root


def ingest_here(root: Path, batch: Path, **kwargs):
    with Butler.from_config(str(root), writeable=True) as butler:
        return ProductIngester(butler, **kwargs).run([batch])


def run_cli(root: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([BUTLER, "ingest-casu", str(root), *map(str, args)], capture_output=True, text=True)


def repository_state(root: Path) -> dict:
    """Everything an ingest writes: datasets (ID, type, run, data ID),
    dimension records (all their values), the checksum of each datastore
    file by path inside the repository, and the files no dataset refers to.
    """
    with Butler.from_config(str(root)) as butler:
        registry = butler.registry
        runs = list(registry.queryCollections(collectionTypes={CollectionType.RUN}))
        refs = butler.query_all_datasets(runs, find_first=False, limit=None) if runs else []
        referenced = (
            {Path(uris.primaryURI.ospath) for uris in butler.get_many_uris(refs).values()} if refs else set()
        )
        state = {
            "datasets": {(ref.id, ref.datasetType.name, ref.run, ref.dataId) for ref in refs},
            "records": {
                element: {repr(sorted(r.toDict().items())) for r in registry.queryDimensionRecords(element)}
                for element in ELEMENTS
            },
        }
    # The registry's files (database, a killed transaction's journal) are
    # compared through the registry.
    files = {
        path
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith("gen3.sqlite3") and path.name != "butler.yaml"
    }
    state["files"] = {str(path.relative_to(root)): checksum(ResourcePath(path)) for path in files}
    state["unreferenced"] = {str(path.relative_to(root)) for path in files - referenced}
    return state


def stored_files(root: Path) -> dict[Path, int]:
    """Files under the run's directory of the datastore, with their sizes,
    as a running ingest changes them."""
    found = {}
    for parent, _, names in os.walk(root / RUN):
        for name in names:
            path = Path(parent, name)
            try:
                found[path] = path.stat().st_size
            except FileNotFoundError:
                # Renamed or removed since it was listed.
                continue
    return found


def is_temporary(path: Path) -> bool:
    """Whether a datastore file is a copy being written (the datastore
    copies to a file of a random name, then renames it to its dataset's)."""
    return not path.name.startswith("casu_")


def partial_copy(root: Path) -> bool:
    """Kill point: a copy is being written (a non-empty temporary file)."""
    return any(is_temporary(path) and size > 0 for path, size in stored_files(root).items())


def stored_file(root: Path) -> bool:
    """Kill point: a first complete file is in the datastore."""
    return any(not is_temporary(path) for path in stored_files(root))


def writing(root: Path) -> bool:
    """Kill point: the ingest holds the write lock (its marker is there),
    before it transfers anything."""
    return (root / MARKER_NAME).exists()


def kill_when(root: Path, args: list[str | Path], point: Callable[[Path], bool]) -> None:
    """Start ``butler ingest-casu`` and kill it with SIGKILL, by PID, at a
    point."""
    process = subprocess.Popen(
        [BUTLER, "ingest-casu", str(root), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + TIMEOUT
    try:
        while not point(root):
            assert process.poll() is None, f"ingest ended before its kill point: {process.stderr.read()}"
            assert time.monotonic() < deadline, "kill point not reached"
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, products) -> dict[str, dict]:
    """State of an uninterrupted ingest of the batch, by transfer mode."""
    states = {}
    for transfer in ("copy", "hardlink"):
        base = tmp_path_factory.mktemp(f"clean_{transfer}")
        root = create_repo(base / "repo")
        assert ingest_here(root, stage(base / "batch", products), transfer=transfer).ok
        states[transfer] = repository_state(root)
    return states


KILLS = {
    "copy, mid-copy": (["--transfer", "copy"], partial_copy),
    "default transfer, first file copied": ([], stored_file),
    "move, mid-copy": (["--transfer", "move"], partial_copy),
    "hardlink, write started": (["--transfer", "hardlink"], writing),
}


@pytest.mark.parametrize("case", list(KILLS))
def test_killed_ingest_then_rerun_equals_a_clean_ingest(tmp_path, products, clean, case):
    args, point = KILLS[case]
    transfer = args[1] if args else "copy"
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products)
    given = sorted(batch.iterdir())
    kill_when(root, [batch, *args], point)
    killed = repository_state(root)
    assert not killed["datasets"], "nothing was committed before the kill point"
    if point is partial_copy:
        assert any(is_temporary(root / name) for name in killed["unreferenced"])
        assert sorted(batch.iterdir()) == given, "a move keeps the files until their datasets are committed"
    if point is stored_file:
        assert killed["unreferenced"], "a copied file waits for its commit"
    if args == ["--transfer", "copy"]:
        result = run_cli(root, batch, *args)
        assert result.returncode == 0, result.stderr
        assert MARKER_NAME in killed["unreferenced"], "the killed ingest was writing"
        n_left = sum(name.startswith(f"{RUN}/") for name in killed["unreferenced"])
        assert (
            f"lsst.obs.vista.ingest WARNING: Removed {n_left} files left in {root} by an interrupted ingest."
            in result.stderr
        )
    else:
        assert ingest_here(root, batch, transfer=transfer).ok
    after_rerun = repository_state(root)
    expected = clean["hardlink" if transfer == "hardlink" else "copy"]
    assert after_rerun["datasets"] == expected["datasets"]
    assert after_rerun["records"] == expected["records"]
    assert after_rerun["files"] == expected["files"]
    assert not after_rerun["unreferenced"]
    if transfer == "move":
        assert not any(batch.iterdir())


def test_clean_up_removes_only_unreferenced_files_of_the_run(tmp_path, products):
    """After an interruption, files of nested runs and files datasets refer
    to are kept; a stray file in the run's directory goes."""
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0])
    assert ingest_here(root, batch).ok
    with Butler.from_config(str(root), writeable=True) as butler:
        (ref,) = butler.query_datasets("casu_catalog", collections=RUN, data_id=DETECTOR_1, limit=None)
        nested = f"{RUN}/earlier"
        butler.collections.register(nested)
        old = DatasetRef(ref.datasetType, ref.dataId, run=nested)
        formatter = "lsst.obs.vista.formatters.TableHduFormatter"
        butler.ingest(
            FileDataset(batch / products[0].catalog.name, [old], formatter=formatter), transfer="copy"
        )
        kept = Path(butler.getURI(old).ospath)
    assert kept.is_relative_to(root / RUN)
    stray = root / RUN / "casu_stack" / "k3jd8wq0zq1xv7ta.fit"
    stray.write_bytes(b"partial")
    (root / MARKER_NAME).write_text(json.dumps({"run": RUN, "pid": 1}))
    before = repository_state(root)
    assert before["unreferenced"] == {str(stray.relative_to(root)), MARKER_NAME}
    report = ingest_here(root, stage(tmp_path / "new", products, [1]))
    assert report.ok and len(report.ingested) == 3
    assert not stray.exists() and kept.exists()
    assert not repository_state(root)["unreferenced"]


def test_concurrent_ingests_into_one_sqlite_repository_both_succeed(tmp_path, products, clean):
    root = create_repo(tmp_path / "repo")
    first = stage(tmp_path / "first", products, [0, 1, 2])
    second = stage(tmp_path / "second", products, [1, 2, 3])
    processes = [
        subprocess.Popen([BUTLER, "ingest-casu", str(root), str(batch)], stderr=subprocess.PIPE, text=True)
        for batch in (first, second)
    ]
    results = [(process.wait(), process.stderr.read()) for process in processes]
    for process in processes:
        process.stderr.close()
    for returncode, stderr in results:
        assert returncode == 0, stderr
        assert "ERROR" not in stderr
    logs = "\n".join(stderr for _, stderr in results)
    # The stacks both were given went in once, by whichever came first.
    assert "skipped 6 files already ingested" in logs.lower()
    state = repository_state(root)
    assert state["datasets"] == clean["copy"]["datasets"]
    assert state["records"] == clean["copy"]["records"]
    assert state["files"] == clean["copy"]["files"]
    assert not state["unreferenced"]


def test_default_transfer_copies_so_editing_the_source_changes_nothing(tmp_path, products):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0])
    result = CliRunner().invoke(ingest_command("VIRCAM"), [str(root), str(batch)])
    assert result.exit_code == 0, result.output
    source = batch / products[0].stack.name
    original = fits.getheader(source, 1)["MAGZPT"]
    with fits.open(source, mode="update") as hdus:
        hdus[1].header["MAGZPT"] = original + 1.0
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        (ref,) = butler.query_datasets("casu_stack", data_id=DETECTOR_1, limit=None)
        stored = Path(butler.getURI(ref).ospath)
        assert stored.is_relative_to(root) and not stored.samefile(source)
        assert butler.get(ref).metadata["MAGZPT"] == pytest.approx(original)


def test_help_says_what_each_transfer_mode_does():
    result = CliRunner().invoke(ingest_command("VIRCAM"), ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "'copy' (the default): a copy inside the repository" in text
    for mode in ("move", "direct", "symlink", "relsymlink", "hardlink", "link", "auto"):
        assert f"'{mode}'" in text, mode
    assert "editing the file in place changes the dataset" in text
    assert "--replace" in text


def _reprocess(path: Path) -> None:
    """Change a card in place: a reprocessed stack of the same size."""
    size = path.stat().st_size
    with fits.open(path, mode="update") as hdus:
        hdus[1].header["MAGZPT"] += 0.25
        hdus[0].header["RA"] += 1e-4
    assert path.stat().st_size == size


def test_same_size_reprocessed_stack_is_refused_then_replaced(tmp_path, products, caplog):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0])
    assert ingest_here(root, batch).ok
    stack = batch / products[0].stack.name
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        (ref,) = butler.query_datasets("casu_stack", data_id=DETECTOR_1, limit=None)
        stored = butler.getURI(ref).ospath
    _reprocess(stack)
    before = repository_state(root)

    refused = run_cli(root, batch)
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if " ERROR: " in line]
    exposure = ref.dataId["exposure"]
    cause = (
        f"casu_stack of exposure {exposure} was ingested from {stored}, "
        "whose content differs (same size, different blake2b checksum)"
    )
    assert lines == [f"lsst.obs.vista.ingest ERROR: {stack}: {cause}; --replace replaces what was ingested"]
    assert "Skipped 2 files already ingested; 1 file failed" in refused.stderr
    assert repository_state(root) == before

    with caplog.at_level(logging.INFO, logger="lsst.obs.vista.ingest"):
        replaced = CliRunner().invoke(ingest_command("VIRCAM"), [str(root), str(batch), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    log = [r.getMessage() for r in caplog.records if r.name == "lsst.obs.vista.ingest"]
    assert f"{stack}: replaced: {cause}" in log
    assert any(
        m.startswith("Ingested 1 file (2 datasets of 1 exposure); replaced the datasets of 1 file")
        for m in log
    )
    state = repository_state(root)
    assert state["datasets"] == before["datasets"], "the same dataset IDs"
    assert state["files"][str(Path(stored).relative_to(root))] == checksum(ResourcePath(stack))
    assert not state["unreferenced"]
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        assert butler.get(ref).metadata["MAGZPT"] == pytest.approx(fits.getheader(stack, 1)["MAGZPT"])
        (record,) = butler.registry.queryDimensionRecords("exposure", exposure=exposure, instrument="VIRCAM")
        assert record.tracking_ra == pytest.approx(fits.getheader(stack, 0)["RA"])

    again = ingest_here(root, batch)
    assert again.ok and len(again.skipped) == 3
