"""Fixtures shared by several test modules, and the order of the modules.

The longest modules run first, then the other modules with end-to-end
(``slow``) tests: ``make test`` hands whole files to two workers in
collection order (``--no-loadscope-reorder``; xdist's own order, most tests
first, puts the long end-to-end files with few tests last), and a long file
started last leaves the other worker idle.

The end-to-end modules (processCcd.py -j 2, bps, run-time faults, coadds,
the PostgreSQL registry) each need the same small VIRCAM repository
processed once by ``processCcd.py -j 1``; it is built once per test session,
shared by the xdist workers, and each module works on its own copy.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest

from commands import BIN, ROOT, invoke, run, simulate

SEED = ROOT / "config" / "butler" / "seed.yaml"
SERIAL_OUTPUT = "u/test/j1"
"""Output collection of the uninterrupted ``processCcd.py -j 1`` run in `processed_vircam`."""


LONGEST_FIRST = ("test_demo.py", "test_coadd_pipeline.py", "test_calibrate_pipeline.py", "test_docs.py")
"""The modules that take longest (``pytest --durations=0``), longest first:
one worker runs the worked example while the other builds the shared
`processed_vircam_template` for the coadd pipeline, and the last modules to
start are short ones."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`LONGEST_FIRST`, then the other modules holding a ``slow`` test, then
    the rest, each group in collection order."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        if item.path.name in LONGEST_FIRST:
            return LONGEST_FIRST.index(item.path.name)
        return len(LONGEST_FIRST) + (item.path not in slow_modules)

    items.sort(key=rank)


def _build_processed_vircam(root: Path) -> None:
    repo = root / "repo"
    invoke("butler", "create", "--seed-config", SEED, repo)
    simulate(
        root / "vircam", "--stacks", "2", "--size", "256", "--detectors", "1,2", "--seed", "5",
        "--refcat", root / "gaia.fits",
    )  # fmt: skip
    invoke("butler", "ingest-casu", repo, root / "vircam", "--transfer", "copy")
    invoke("butler", "ingest-refcat", repo, "gaia_dr3", root / "gaia.fits")
    run(BIN / "processCcd.py", repo, "--id", "instrument=VIRCAM", "-o", SERIAL_OUTPUT)


@pytest.fixture(scope="session")
def processed_vircam_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A seeded repository holding two 256-pixel stacks of two detectors
    (seed 5, copied in) and their Gaia-like catalogue (``gaia_dr3``),
    processed by ``processCcd.py -j 1`` into `SERIAL_OUTPUT`.

    Built by the first worker that asks for it (the others wait for it on a
    lock); do not change it: copy it with `copy_processed_vircam`.
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the directory every xdist worker's base directory is in
    template = shared / "processed_vircam"
    with open(shared / "processed_vircam.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "complete").exists():
            shutil.rmtree(template, ignore_errors=True)  # what a failed build left
            template.mkdir()
            _build_processed_vircam(template)
            (template / "complete").touch()
    return template / "repo"


@pytest.fixture(scope="module")
def processed_vircam(processed_vircam_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of `processed_vircam_template`."""
    copy = tmp_path_factory.mktemp("processed") / "repo"
    shutil.copytree(processed_vircam_template, copy, symlinks=True)
    return copy
