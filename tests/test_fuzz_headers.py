"""Fuzzing of header translation, validation and pairing at ingest with
hypothesis: synthetic VIRCAM stacks (and their confidence maps) whose cards
are deleted or replaced by mistyped or absurd values.

Properties: reading a file never raises and fails, if at all, with one line
that is our own message (not a bare Python exception); a file that is read
has usable records (a positive, finite exposure time, a known filter and
detectors); and a file that the ingest rejects leaves the repository as it
was.

The number of examples is bounded for CI; set ``VISTA_FUZZ_EXAMPLES`` for
more (e.g. ``VISTA_FUZZ_EXAMPLES=2000``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import FITSFixedWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler, CollectionType

from lsst.obs.vista.ingest import ProductIngester
from lsst.obs.vista.ingest.reading import ProductFile, ReadFailure, read_product_file
from lsst.obs.vista.ingest.units import Candidate, read_unit
from lsst.obs.vista.sim import SimulatedStack, SimulationConfig, write_pawprint_stack

EXAMPLES = int(os.environ.get("VISTA_FUZZ_EXAMPLES", "60"))
CONFIG = SimulationConfig(size=64, detectors=(1, 2), seed=31, jitter=2.0)
CARDS = (
    "INSTRUME",
    "ORIGFILE",
    "EXTNAME",
    "DATE-OBS",
    "MJD-OBS",
    "EXPTIME",
    "ESO DET DIT",
    "ESO DET NDIT",
    "NICOMB",
    "NJITTER",
    "ARCFILE",
    "ESO OBS ID",
    "OFFSTNUM",
    "OBSNUM",
    "ESO INS FILT1 NAME",
    "ESO DET CHIP NO",
    "ESO DPR TYPE",
    "ESO DPR CATG",
    "RA",
    "DEC",
    "RADECSYS",
    "ESO TEL ALT",
    "ESO TEL AZ",
    "ESO TEL POSANG",
    "ESO TEL AIRM START",
    "MAGZPT",
    "SKYNOISE",
    "SEEING",
    "CIR_CPM",
    "PROV0000",
    "CRVAL1",
    "CRPIX2",
    "CD1_1",
    "CTYPE1",
    "SIMULATE",
)
"""Cards the translator, the validation, the pairing and the regions read."""

VALUES = st.one_of(
    st.none(),  # delete the card
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from(
        [0, -1, 1e300, -1e-300, "", " ", "Z", "DET1.CHIP1", "DET1.CHIP99", "2012-09-25T06:03:00"]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=24),
)
EDITS = st.lists(
    st.tuples(st.sampled_from((0, 1, 2)), st.sampled_from(CARDS), VALUES), min_size=1, max_size=5
)
OUR_ERROR = re.compile(r"^(?![A-Z][A-Za-z]*(Error|Exception|Warning)\b)")
"""A cause that does not start with a Python exception class name."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SimulatedStack:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return write_pawprint_stack(tmp_path_factory.mktemp("fuzz_source"), 0, CONFIG)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def damaged_copy(source: Path, target: Path, edits: list[tuple[int, str, object]]) -> None:
    """Write ``source`` to ``target`` with the edits applied (a `None`
    value deletes the card)."""
    with fits.open(source) as hdus, warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        copy = fits.HDUList([hdu.copy() for hdu in hdus])
        for index, keyword, value in edits:
            header = copy[index].header
            if value is None:
                header.remove(keyword, ignore_missing=True, remove_all=True)
            else:
                header[keyword] = value
        copy.writeto(target, overwrite=True, output_verify="silentfix")


def check_result(result: ProductFile | ReadFailure) -> None:
    if isinstance(result, ReadFailure):
        assert result.cause and "\n" not in result.cause, result.cause
        assert OUR_ERROR.match(result.cause), result.cause
        return
    assert set(result.datasets) <= set(range(1, 17))
    if result.records is not None:
        exposure = result.records.exposure
        assert math.isfinite(exposure["exposure_time"]) and exposure["exposure_time"] > 0, exposure
        assert exposure["physical_filter"].startswith("VIRCAM-")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_reading_a_stack_fails_only_with_our_one_line_errors(stack, workdir, edits):
    target = workdir / stack.stack.name
    damaged_copy(stack.stack, target, edits)
    check_result(read_product_file("VIRCAM", "casu_stack", target))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stack_edits=st.lists(st.tuples(st.sampled_from((1, 2)), st.just("CIR_CPM"), VALUES), max_size=2),
    edits=EDITS,
)
def test_pairing_a_damaged_confidence_map_fails_only_with_our_one_line_errors(
    stack, workdir, stack_edits, edits
):
    batch = workdir / "pairing"
    batch.mkdir(exist_ok=True)
    damaged_copy(stack.stack, batch / stack.stack.name, stack_edits)
    damaged_copy(stack.confidence, batch / stack.confidence.name, edits)
    unit = read_unit(
        "VIRCAM", Candidate(path=batch / stack.stack.name, product="casu_stack", stem=(stack.stem,))
    )
    check_result(unit.main)
    for companion in unit.companions.values():
        check_result(companion)
    for line in [*unit.missing.values(), *unit.warnings]:
        assert line and "\n" not in line


def repo_state(root: Path) -> tuple:
    with Butler.from_config(str(root)) as butler:
        registry = butler.registry
        records = {
            element: {r.dataId for r in registry.queryDimensionRecords(element)}
            for element in ("exposure", "visit", "visit_detector_region", "group", "day_obs")
        }
        runs = list(registry.queryCollections(collectionTypes={CollectionType.RUN}))
        datasets = {
            (ref.datasetType.name, ref.dataId)
            for dataset_type in registry.queryDatasetTypes()
            for ref in (registry.queryDatasets(dataset_type, collections=runs) if runs else [])
        }
    files = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "sqlite" not in p.name
    )
    return records, datasets, files


@pytest.fixture(scope="module")
def repo(workdir: Path) -> Path:
    root = workdir / "repo"
    Butler.makeRepo(str(root))
    return root


@settings(
    max_examples=max(EXAMPLES // 3, 10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edits=EDITS)
def test_a_rejected_stack_writes_nothing(stack, workdir, repo, edits):
    batch = workdir / "ingest"
    shutil.rmtree(batch, ignore_errors=True)
    batch.mkdir()
    damaged_copy(stack.stack, batch / stack.stack.name, edits)
    shutil.copy(stack.confidence, batch / stack.confidence.name)
    before = repo_state(repo)
    logging.getLogger("lsst.obs.vista.ingest").setLevel(logging.CRITICAL)
    try:
        with Butler.from_config(str(repo), writeable=True) as butler:
            report = ProductIngester(butler, transfer="copy").run([batch])
    finally:
        logging.getLogger("lsst.obs.vista.ingest").setLevel(logging.NOTSET)
    for cause in report.failed.values():
        assert cause and "\n" not in cause and OUR_ERROR.match(cause), cause
    if batch / stack.stack.name in report.failed:
        assert repo_state(repo) == before
