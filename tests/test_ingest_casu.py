"""Ingest of CASU products (``butler ingest-casu``) into real SQLite repositories,
from synthetic files written on the real VIRCAM headers by lsst.obs.vista.sim."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astro_metadata_translator import ObservationInfo
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from lsst.daf.butler import Butler, CollectionType, DimensionUniverse
from lsst.images import Box
from lsst.sphgeom import LonLat, UnitVector3d

from lsst.obs.vista.casu_headers import HEADER_DIR, read_header_dump
from lsst.obs.vista.ingest import IngestPolicy, IngestReport, ProductIngester, policy_for_instrument
from lsst.obs.vista.ingest.fits_scan import FitsStructureError, HduHeader, MergedHeader, scan_hdus
from lsst.obs.vista.sim import (
    SimulatedStack,
    SimulatedTile,
    SimulationConfig,
    write_pawprint_stack,
    write_tile,
)
from lsst.obs.vista.translators import VircamTranslator

BIN = Path(sys.executable).parent
BUTLER = BIN / "butler"
REPO_ROOT = Path(__file__).resolve().parents[1]
RUN = "VIRCAM/raw/casu"
CHAIN = "VIRCAM/defaults"
VIRCAM = {"instrument": "VIRCAM"}
KINDS = ("stack", "confidence", "catalog")
DATASET_TYPES = {"stack": "casu_stack", "confidence": "casu_confidence", "catalog": "casu_catalog"}
ELEMENTS = (
    "day_obs",
    "group",
    "exposure",
    "visit",
    "visit_definition",
    "visit_system_membership",
    "visit_detector_region",
)
# Miniature camera: two 64-pixel detectors, jitter small enough for them.
CONFIG = SimulationConfig(size=64, detectors=(1, 2), seed=11, jitter=2.0)
N_STACKS = 6  # one tile's worth


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[int, SimulatedStack]:
    """Six synthetic pawprint stacks with confidence maps and catalogues."""
    outdir = tmp_path_factory.mktemp("casu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return {index: write_pawprint_stack(outdir, index, CONFIG) for index in range(N_STACKS)}


@pytest.fixture(scope="module")
def tile(products: dict[int, SimulatedStack]) -> SimulatedTile:
    """The tile of the six stacks, with its confidence map and catalogue."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return write_tile(products[0].stack.parent, list(products.values()), CONFIG)


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory, products: dict[int, SimulatedStack]) -> Path:
    """A repository holding stacks 0 and 1, ingested in place; copied by
    tests that need a populated repository."""
    root = create_repo(tmp_path_factory.mktemp("base_repo") / "repo")
    with Butler.from_config(str(root), writeable=True) as butler:
        batch = stage(tmp_path_factory.mktemp("base_files"), products, [0, 1])
        assert ProductIngester(butler, transfer="direct").run([batch]).ok
    return root


def create_repo(root: Path) -> Path:
    Butler.makeRepo(str(root))
    return root


def copy_repo(base: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(base, root)
    return root


def stage(directory: Path, products: dict[int, SimulatedStack], indices: list[int], kinds=KINDS) -> Path:
    """Copy some products into ``directory`` (a fresh batch to ingest)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in indices:
        for kind in kinds:
            source = getattr(products[index], kind)
            shutil.copy(source, directory / source.name)
    return directory


def ingest(root: Path, *args: str | Path, command: tuple[str | Path, ...] = (BUTLER, "ingest-casu")):
    """Run the command line; its log lines are in ``stderr``."""
    return subprocess.run([*command, str(root), *map(str, args)], capture_output=True, text=True)


def ingest_here(
    root: Path, *paths: Path, caplog: pytest.LogCaptureFixture, **kwargs
) -> tuple[IngestReport, str]:
    """Run the ingest in this process (the same code the command runs, a
    few seconds faster); return its report and its log lines."""
    caplog.clear()
    kwargs.setdefault("transfer", "direct")
    with (
        caplog.at_level(logging.INFO, logger="lsst.obs.vista.ingest"),
        Butler.from_config(str(root), writeable=True) as butler,
    ):
        report = ProductIngester(butler, **kwargs).run(paths)
    lines = [f"{r.levelname}: {r.getMessage()}" for r in caplog.records if r.name == "lsst.obs.vista.ingest"]
    return report, "\n".join(lines)


def exposure_id(stack: SimulatedStack) -> int:
    """Exposure ID of a stack, from the header translator (not the ingest)."""
    with fits.open(stack.stack) as hdus:
        header = hdus[0].header.copy()
        header.update(hdus[1].header)
    return ObservationInfo(header, filename=str(stack.stack), translator_class=VircamTranslator).exposure_id


def repo_state(root: Path) -> dict[str, set]:
    """Data IDs of every dimension record the ingest writes and of every
    dataset, to compare a repository before and after."""
    with Butler.from_config(str(root)) as butler:
        registry = butler.registry
        state = {element: {r.dataId for r in registry.queryDimensionRecords(element)} for element in ELEMENTS}
        runs = list(registry.queryCollections(collectionTypes={CollectionType.RUN}))
        state["datasets"] = {
            (ref.datasetType.name, ref.run, ref.dataId)
            for dataset_type in registry.queryDatasetTypes()
            for ref in (registry.queryDatasets(dataset_type, collections=runs) if runs else [])
        }
    return state


def lines_about(stderr: str, path: Path) -> list[str]:
    """Log lines about one file (they start with ``<logger> LEVEL: <path>:``)."""
    return [line for line in stderr.splitlines() if f": {path}: " in line]


def new_in(before: dict[str, set], after: dict[str, set]) -> dict[str, set]:
    assert all(before[key] <= after[key] for key in before), "ingest removed something"
    return {key: after[key] - before[key] for key in before}


def test_cli_ingests_stacks_confidence_maps_and_catalogues(tmp_path, products):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0, 1, 2])
    (batch / "notes.txt").write_text("not a product; ignored inside a directory")
    result = ingest(root, batch, "--transfer", "direct", "--processes", "2")
    assert result.returncode == 0, result.stderr
    assert "Ingested 9 files (18 datasets of 3 exposures)" in result.stderr
    expected = {exposure_id(products[i]) for i in range(3)}
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        registry = butler.registry
        assert registry.getCollectionType(CHAIN) == CollectionType.CHAINED
        assert list(registry.getCollectionChain(CHAIN)) == [RUN]
        for kind, name in DATASET_TYPES.items():
            refs = butler.query_datasets(name, collections=RUN)
            assert {(ref.dataId["exposure"], ref.dataId["detector"]) for ref in refs} == {
                (e, d) for e in expected for d in CONFIG.detectors
            }, kind
        exposures = {r.id: r for r in registry.queryDimensionRecords("exposure", instrument="VIRCAM")}
        assert set(exposures) == expected
        visits = {r.id: r for r in registry.queryDimensionRecords("visit", instrument="VIRCAM")}
        assert set(visits) == expected, "one-to-one visits share the exposure IDs"
        for index in range(3):
            primary = fits.getheader(products[index].stack, 0)
            n_exposures = fits.getheader(products[index].stack, 1)["NICOMB"]
            record = exposures[exposure_id(products[index])]
            assert record.obs_id == visits[record.id].name
            assert record.physical_filter == "VIRCAM-Z"
            single = primary["ESO DET DIT"] * primary["ESO DET NDIT"]
            assert record.exposure_time == pytest.approx(single * n_exposures)
            assert record.has_simulated
            assert record.tracking_ra == pytest.approx(primary["RA"])
            assert record.timespan.begin.utc.isot[:19] == primary["DATE-OBS"][:19]
            assert record.day_obs == int(products[index].stem[1:9])
        definitions = registry.queryDimensionRecords("visit_definition", instrument="VIRCAM")
        assert {(r.exposure, r.visit) for r in definitions} == {(e, e) for e in expected}
        memberships = registry.queryDimensionRecords("visit_system_membership", instrument="VIRCAM")
        assert {(r.visit_system, r.visit) for r in memberships} == {(0, e) for e in expected}
        (day,) = registry.queryDimensionRecords("day_obs", instrument="VIRCAM")
        assert day.id == 20120924
        assert all(day.timespan.contains(r.timespan.begin) for r in exposures.values())
    query = subprocess.run(
        [BUTLER, "query-data-ids", str(root), "visit", "detector", "--datasets", "casu_stack"]
        + ["--collections", CHAIN, "--where", "instrument='VIRCAM'"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split() for line in query.stdout.splitlines() if line.strip().startswith("VIRCAM")]
    assert {(int(r[2]), int(r[1])) for r in rows} == {(e, d) for e in expected for d in CONFIG.detectors}


def test_stack_confidence_and_catalogue_are_paired(tmp_path, products, base_repo):
    with Butler.from_config(str(base_repo), collections=CHAIN) as butler:
        for index in (0, 1):
            stack = products[index]
            for detector in CONFIG.detectors:
                data_id = {"instrument": "VIRCAM", "exposure": exposure_id(stack), "detector": detector}
                paths = {
                    kind: Path(butler.getURI(name, data_id).ospath) for kind, name in DATASET_TYPES.items()
                }
                assert {kind: path.name for kind, path in paths.items()} == {
                    kind: getattr(stack, kind).name for kind in KINDS
                }, data_id
                assert len({path.parent for path in paths.values()}) == 1


def test_visit_regions_contain_each_detector_centre(products, base_repo):
    with Butler.from_config(str(base_repo), collections=CHAIN) as butler:
        registry = butler.registry
        for index in (0, 1):
            visit = exposure_id(products[index])
            (visit_record,) = registry.queryDimensionRecords("visit", instrument="VIRCAM", visit=visit)
            records = registry.queryDimensionRecords("visit_detector_region", visit=visit, **VIRCAM)
            regions = {r.detector: r.region for r in records}
            assert set(regions) == set(CONFIG.detectors)
            for detector in CONFIG.detectors:
                ra, dec = _detector_centre(products[index].stack, detector)
                centre = UnitVector3d(LonLat.fromDegrees(ra, dec))
                assert regions[detector].contains(centre)
                assert visit_record.region.contains(centre)
                other = next(d for d in CONFIG.detectors if d != detector)
                assert not regions[other].contains(centre), "detector regions are not the whole visit"
                found = butler.query_data_ids(
                    ["visit", "detector"],
                    data_id={"instrument": "VIRCAM"},
                    where="visit_detector_region.region OVERLAPS POINT(:ra, :dec)",
                    bind={"ra": ra, "dec": dec},
                    explain=False,
                )
                assert (visit, detector) in {(d["visit"], d["detector"]) for d in found}
            ra, dec = _detector_centre(products[index].stack, 1)
            assert not visit_record.region.contains(UnitVector3d(LonLat.fromDegrees(ra + 1.0, dec)))


def _detector_centre(path: Path, detector: int) -> tuple[float, float]:
    header = fits.getheader(path, f"DET1.CHIP{detector}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        ra, dec = WCS(header).pixel_to_world_values((header["NAXIS1"] - 1) / 2, (header["NAXIS2"] - 1) / 2)
    return float(ra), float(dec)


def test_tile_defines_its_own_exposure_and_visit(tmp_path, products, tile, caplog):
    root = create_repo(tmp_path / "repo")
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in (tile.tile, tile.confidence, tile.catalog):
        shutil.copy(path, batch / path.name)
    report, log = ingest_here(root, batch, caplog=caplog)
    assert report.ok and len(report.ingested) == 3, log
    with fits.open(tile.tile) as hdus:
        header = hdus[0].header.copy()
        header.update(hdus[1].header)
        pixels = hdus[1].data.astype(np.float32)
    expected = ObservationInfo(header, filename=str(tile.tile), translator_class=VircamTranslator).exposure_id
    assert expected % 10 == 2 and expected == exposure_id(products[0]) + 1, "tile digit 2, same DATE-OBS"
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        registry = butler.registry
        for name in ("casu_tile", "casu_tile_confidence", "casu_tile_catalog"):
            (ref,) = butler.query_datasets(name)
            assert ref.dataId.required == {"instrument": "VIRCAM", "exposure": expected}
        (visit,) = registry.queryDimensionRecords("visit", instrument="VIRCAM")
        assert visit.id == expected
        assert not list(registry.queryDimensionRecords("visit_detector_region", instrument="VIRCAM"))
        # The tile covers its six pawprints: every detector centre is inside.
        for stack in products.values():
            for detector in CONFIG.detectors:
                ra, dec = _detector_centre(stack.stack, detector)
                assert visit.region.contains(UnitVector3d(LonLat.fromDegrees(ra, dec)))
        image = butler.get("casu_tile", instrument="VIRCAM", exposure=expected)
        np.testing.assert_array_equal(image.array, pixels)
        assert image.metadata["CIR_CPM"] == f"{tile.stem}_conf.fit"
        confidence = butler.get("casu_tile_confidence", instrument="VIRCAM", exposure=expected)
        assert confidence.array.shape == pixels.shape
        catalog = butler.get("casu_tile_catalog", instrument="VIRCAM", exposure=expected)
        assert catalog.meta["EXTNAME"] == "APM-BINARYTABLE"
        assert len(catalog) == len(fits.getdata(tile.catalog, 1))


def test_get_returns_pixels_and_metadata(products, base_repo):
    stack = products[1]
    data_id = {"instrument": "VIRCAM", "exposure": exposure_id(stack), "detector": 2}
    with Butler.from_config(str(base_repo), collections=CHAIN) as butler:
        image = butler.get("casu_stack", data_id)
        confidence = butler.get("casu_confidence", data_id)
        catalog = butler.get("casu_catalog", data_id)
        bbox = butler.get("casu_stack.bbox", data_id)
        cutout = butler.get("casu_stack", data_id, parameters={"bbox": Box.factory[5:20, 10:30]})
    with fits.open(stack.stack) as hdus:
        header = hdus["DET1.CHIP2"].header.copy()
        primary = hdus[0].header
        expected = hdus["DET1.CHIP2"].data.astype(np.float32)
    assert header["BSCALE"] != 1, "the stack stores scaled integers"
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, expected)
    assert image.unit == u.adu
    assert bbox == image.bbox == Box.from_shape(expected.shape)
    np.testing.assert_array_equal(cutout.array, expected[5:20, 10:30])
    assert cutout.bbox == Box.factory[5:20, 10:30]
    metadata = image.metadata
    for key in ("SKYNOISE", "MAGZPT", "SEEING", "NICOMB", "GAINCOR", "CIR_CPM", "CRPIX1", "CD1_1", "PV2_3"):
        assert metadata[key] == header[key], key
    assert metadata["ESO DET CHIP NO"] == 2
    assert metadata["EXTNAME"] == "DET1.CHIP2"
    assert metadata["ESO OBS ID"] == primary["ESO OBS ID"], "primary cards are merged in"
    assert metadata["DATE-OBS"] == header["DATE-OBS"], "extension cards take precedence"
    assert not {"COMMENT", "HISTORY", ""} & set(metadata)
    with warnings.catch_warnings():
        # Long keywords become HIERARCH cards; CASU's old-style WCS cards
        # get fixed: both warn, neither matters here.
        warnings.simplefilter("ignore", VerifyWarning)
        warnings.simplefilter("ignore", FITSFixedWarning)
        rebuilt = WCS(fits.Header(list(metadata.items())))
        original = WCS(header)
    assert np.allclose(rebuilt.pixel_to_world_values(3, 4), original.pixel_to_world_values(3, 4), atol=1e-12)
    with fits.open(stack.confidence) as hdus:
        np.testing.assert_array_equal(confidence.array, hdus["DET1.CHIP2"].data)
        assert confidence.array.dtype == np.int16
    expected_catalog = Table.read(stack.catalog, hdu="DET1.CHIP2", unit_parse_strict="silent")
    assert len(catalog) == len(expected_catalog) > 0
    np.testing.assert_array_equal(catalog["X_coordinate"], expected_catalog["X_coordinate"])
    assert catalog.meta["EXTNAME"] == "DET1.CHIP2"


def test_reingest_is_a_noop_that_says_so(tmp_path, products, base_repo):
    root = copy_repo(base_repo, tmp_path)
    before = repo_state(root)
    result = ingest(root, stage(tmp_path / "again", products, [0, 1]), "--transfer", "direct")
    assert result.returncode == 0, result.stderr
    assert "Skipped 6 files already ingested" in result.stderr
    assert "ERROR" not in result.stderr and "WARNING" not in result.stderr
    assert repo_state(root) == before


def test_stack_without_confidence_map_is_ingested_with_one_warning(tmp_path, products, base_repo, caplog):
    root = copy_repo(base_repo, tmp_path)
    before = repo_state(root)
    batch = stage(tmp_path / "batch", products, [2], kinds=("stack", "catalog"))
    stack = batch / products[2].stack.name
    report, log = ingest_here(root, batch, caplog=caplog)
    assert report.ok
    (line,) = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert line.endswith(
        f"{stack}: no casu_confidence (CIR_CPM = '{products[2].stem}_conf.fit[1]' names no file; "
        f"looked for {products[2].stem}_conf.fit, {products[2].stem}_conf.fits, "
        f"{products[2].stem}_conf.fit.fz, {products[2].stem}_conf.fits.fz); ingested without it"
    )
    added = new_in(before, repo_state(root))
    exposure = exposure_id(products[2])
    assert {(name, data_id["exposure"]) for name, _, data_id in added["datasets"]} == {
        ("casu_stack", exposure),
        ("casu_catalog", exposure),
    }
    assert {data_id["exposure"] for data_id in added["exposure"]} == {exposure}


def test_companions_without_their_stack_are_reported_not_ingested(tmp_path, products, base_repo, caplog):
    root = copy_repo(base_repo, tmp_path)
    before = repo_state(root)
    kinds = ("confidence", "catalog")
    batch = stage(tmp_path / "batch", products, [3], kinds=kinds)
    report, log = ingest_here(root, batch, caplog=caplog)
    assert not report.ok
    for kind in kinds:
        path = batch / getattr(products[3], kind).name
        (line,) = lines_about(log, path)
        assert line.startswith("ERROR")
        assert f"no casu_stack in this batch to pair it with (looked for {products[3].stem}.fit" in line
        assert path in report.failed
    assert repo_state(root) == before


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_fits(path: Path) -> None:
    path.write_text("SIMPLE? no: this is a text file with a FITS name\n" * 100)


def _wrong_instrument(path: Path) -> None:
    with fits.open(path, mode="update") as hdus:
        hdus[0].header["INSTRUME"] = "DECam"


def _only_primary(path: Path) -> None:
    primary = fits.getheader(path, 0)
    fits.PrimaryHDU(header=primary).writeto(path, overwrite=True)


def _drop_second_extension(path: Path) -> None:
    with fits.open(path) as hdus:
        kept = fits.HDUList([hdu.copy() for hdu in hdus[:2]])
    kept.writeto(path, overwrite=True)


def _shrink_second_extension(path: Path) -> None:
    with fits.open(path) as hdus:
        kept = fits.HDUList([hdu.copy() for hdu in hdus])
    kept[2] = fits.ImageHDU(data=kept[2].data[:-4], header=kept[2].header)
    kept.writeto(path, overwrite=True)


def _unknown_filter(path: Path) -> None:
    with fits.open(path, mode="update") as hdus:
        hdus[0].header["HIERARCH ESO INS FILT1 NAME"] = "Q"


BAD_STACKS = {
    "unknown filter": (
        _unknown_filter,
        "primary HDU has ESO INS FILT1 NAME = 'Q', not a filter of the camera",
    ),
    "truncated": (_truncate, "truncated: HDU"),
    "not FITS": (_not_fits, "not a FITS file"),
    "wrong instrument": (_wrong_instrument, "wrong instrument: 'DECam', not VIRCAM"),
    "missing extensions": (_only_primary, "missing extensions: no image HDU named DET1.CHIP{detector}"),
}


@pytest.mark.parametrize("case", list(BAD_STACKS))
def test_bad_stack_is_reported_and_the_rest_goes_on(tmp_path, products, base_repo, case, caplog):
    damage, cause = BAD_STACKS[case]
    root = copy_repo(base_repo, tmp_path)
    before = repo_state(root)
    batch = stage(tmp_path / "batch", products, [2, 3])
    bad = batch / products[3].stack.name
    damage(bad)
    report, log = ingest_here(root, batch, caplog=caplog)
    assert not report.ok
    (line,) = lines_about(log, bad)
    assert line.startswith("ERROR") and cause in line
    for kind in ("confidence", "catalog"):
        (line,) = lines_about(log, batch / getattr(products[3], kind).name)
        assert line.endswith("not ingested: the casu_stack it belongs to failed")
    # Stack 2 went in completely, nothing of stack 3 did.
    added = new_in(before, repo_state(root))
    good = exposure_id(products[2])
    assert {(name, data_id["exposure"], data_id["detector"]) for name, _, data_id in added["datasets"]} == {
        (name, good, detector) for name in DATASET_TYPES.values() for detector in CONFIG.detectors
    }
    assert {data_id["exposure"] for data_id in added["exposure"]} == {good}
    assert {(d["visit"], d["detector"]) for d in added["visit_detector_region"]} == {
        (good, detector) for detector in CONFIG.detectors
    }
    assert "Ingested 3 files (6 datasets of 1 exposure); 3 files failed" in log


def test_same_exposure_twice_in_a_batch_is_reported(tmp_path, products, caplog):
    root = create_repo(tmp_path / "repo")
    first = stage(tmp_path / "batch" / "a", products, [0])
    second = stage(tmp_path / "batch" / "b", products, [0])
    report, log = ingest_here(root, tmp_path / "batch", caplog=caplog)
    (line,) = lines_about(log, second / products[0].stack.name)
    defined = f"exposure {exposure_id(products[0])} is already defined by {first / products[0].stack.name}"
    assert line.endswith(f"{defined} in this batch")
    assert set(report.ingested) == {first / getattr(products[0], kind).name for kind in KINDS}
    assert set(report.failed) == {second / getattr(products[0], kind).name for kind in KINDS}


def test_confidence_map_of_another_stack_stays_with_it(tmp_path, products, caplog):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [2])
    stage(batch, products, [3], kinds=("stack", "catalog"))
    taken = products[2].confidence.name
    with fits.open(batch / products[3].stack.name, mode="update") as hdus:
        for hdu in hdus[1:]:
            hdu.header["CIR_CPM"] = f"{taken}[{hdu.header['ESO DET CHIP NO']}]"
    report, log = ingest_here(root, batch, caplog=caplog)
    assert report.ok
    (line,) = [line for line in log.splitlines() if line.startswith("WARNING")]
    stack = batch / products[3].stack.name
    stem = products[3].stem
    looked_for = f"{taken}, {stem}_conf.fit, {stem}_conf.fits, {stem}_conf.fit.fz, {stem}_conf.fits.fz"
    assert line.endswith(
        f"{stack}: no casu_confidence (CIR_CPM = '{taken}[1]' names the casu_confidence of "
        f"{products[2].stack.name}; looked for {looked_for}); ingested without it"
    )
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        confidence = butler.query_datasets("casu_confidence")
    assert {ref.dataId["exposure"] for ref in confidence} == {exposure_id(products[2])}


def test_cli_exit_status_tells_a_file_failed(tmp_path, products, base_repo):
    root = copy_repo(base_repo, tmp_path)
    batch = stage(tmp_path / "batch", products, [2, 3])
    bad = batch / products[3].stack.name
    _truncate(bad)
    result = ingest(root, batch, "--transfer", "direct")
    assert result.returncode == 1
    (line,) = lines_about(result.stderr, bad)
    assert line.startswith("lsst.obs.vista.ingest ERROR: ") and "truncated" in line
    assert "Ingested 3 files (6 datasets of 1 exposure); 3 files failed" in result.stderr


BAD_CONFIDENCE_MAPS = {
    "different shape": (
        _shrink_second_extension,
        "DET1.CHIP2 is {nx}x{ny_short} pixels but {stack} is {nx}x{ny}",
    ),
    "missing extension": (_drop_second_extension, "missing extensions: DET1.CHIP2 (present in {stack})"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIDENCE_MAPS))
def test_bad_confidence_map_is_reported_and_its_stack_goes_in(tmp_path, products, base_repo, case, caplog):
    damage, cause = BAD_CONFIDENCE_MAPS[case]
    root = copy_repo(base_repo, tmp_path)
    before = repo_state(root)
    batch = stage(tmp_path / "batch", products, [2])
    bad = batch / products[2].confidence.name
    damage(bad)
    report, log = ingest_here(root, batch, caplog=caplog)
    assert list(report.failed) == [bad]
    (line,) = lines_about(log, bad)
    ny, nx = fits.getdata(products[2].stack, "DET1.CHIP2").shape
    assert cause.format(nx=nx, ny=ny, ny_short=ny - 4, stack=products[2].stack.name) in line
    added = new_in(before, repo_state(root))
    assert {name for name, _, _ in added["datasets"]} == {"casu_stack", "casu_catalog"}
    assert len(added["datasets"]) == 2 * len(CONFIG.detectors)


def test_unit_that_fails_to_write_leaves_nothing_behind(tmp_path, products, caplog):
    """A unit whose write fails (here: a file stands where the datastore
    wants a directory for the catalogue's copy) is rolled back whole, copies
    included; the other units go in."""
    batch = stage(tmp_path / "batch", products, [0, 1])
    probe = create_repo(tmp_path / "probe")
    data_id = {"instrument": "VIRCAM", "exposure": exposure_id(products[0]), "detector": 1}
    with Butler.from_config(str(probe), writeable=True, collections=RUN) as butler:
        assert ProductIngester(butler, transfer="copy").run([batch / products[0].stack.name]).ok
        relative = {
            kind: Path(butler.getURI(name, data_id).ospath).relative_to(probe)
            for kind, name in DATASET_TYPES.items()
        }
    root = create_repo(tmp_path / "repo")
    obstacle = root / relative["catalog"].parent
    obstacle.parent.mkdir(parents=True)
    obstacle.write_text("a file where a directory should be")
    report, log = ingest_here(root, batch, caplog=caplog, transfer="copy")
    assert not report.ok
    for kind in KINDS:
        (line,) = lines_about(log, batch / getattr(products[0], kind).name)
        assert "could not be written" in line
    state = repo_state(root)
    assert {data_id["exposure"] for data_id in state["exposure"]} == {exposure_id(products[1])}
    assert {data_id["exposure"] for _, _, data_id in state["datasets"]} == {exposure_id(products[1])}
    assert not (root / relative["stack"]).exists(), "the stack's copy was rolled back"
    assert not (root / relative["confidence"]).exists(), "the confidence map's copy was rolled back"
    assert obstacle.read_text() == "a file where a directory should be"


def test_confidence_map_found_by_name_when_cir_cpm_names_no_file(tmp_path, products, caplog):
    """The compressed confidence map (``.fit.fz``) is not the file CIR_CPM
    names; the name pattern finds it, and it reads back losslessly."""
    batch = stage(tmp_path / "batch", products, [0], kinds=("stack",))
    with fits.open(products[0].confidence) as hdus:
        compressed = fits.HDUList(
            [fits.PrimaryHDU(header=hdus[0].header)]
            + [
                fits.CompImageHDU(data=hdu.data, header=hdu.header, compression_type="RICE_1")
                for hdu in hdus[1:]
            ]
        )
        originals = {hdu.name: hdu.data.copy() for hdu in hdus[1:]}
    compressed.writeto(batch / f"{products[0].stem}_conf.fit.fz")
    root = create_repo(tmp_path / "repo")
    report, log = ingest_here(root, batch, caplog=caplog)
    assert report.ok and len(report.ingested) == 2, log
    assert "WARNING" not in log
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        for detector in CONFIG.detectors:
            data_id = {"instrument": "VIRCAM", "exposure": exposure_id(products[0]), "detector": detector}
            assert butler.getURI("casu_confidence", data_id).ospath.endswith("_conf.fit.fz")
            confidence = butler.get("casu_confidence", data_id)
            np.testing.assert_array_equal(confidence.array, originals[f"DET1.CHIP{detector}"])


def test_move_transfer_and_ingest_images_script(tmp_path, products):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0])
    result = ingest(root, batch, "--transfer", "move", command=(BIN / "ingestImages.py",))
    assert result.returncode == 0, result.stderr
    assert not any(batch.iterdir()), "move leaves nothing behind"
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        data_id = {"instrument": "VIRCAM", "exposure": exposure_id(products[0]), "detector": 1}
        uri = butler.getURI("casu_stack", data_id)
        assert uri.ospath.startswith(str(root))
        expected = fits.getdata(products[0].stack, "DET1.CHIP1").astype(np.float32)
        np.testing.assert_array_equal(butler.get("casu_stack", data_id).array, expected)
    # The repository's bin/ script runs the same command.
    script = (sys.executable, REPO_ROOT / "bin" / "ingestImages.py")
    again = ingest(root, stage(tmp_path / "again", products, [0]), command=script)
    assert again.returncode == 0, again.stderr
    assert "Skipped 3 files already ingested" in again.stderr


def test_explicit_paths_that_are_not_products_fail(tmp_path, products, caplog):
    """A stack named on its own brings its companions (found next to it)."""
    root = create_repo(tmp_path / "repo")
    stray = tmp_path / "image.fits"
    stray.write_bytes(b"")
    missing = tmp_path / "nowhere" / "v20120924_00100_st.fit"
    report, log = ingest_here(root, stray, missing, products[0].stack, caplog=caplog)
    (line,) = lines_about(log, stray)
    assert "file name matches none of *_st.fit" in line
    (line,) = lines_about(log, missing)
    assert line.endswith("no such file or directory")
    assert set(report.failed) == {stray, missing}
    assert set(report.ingested) == {products[0].stack, products[0].confidence, products[0].catalog}
    assert "Ingested 3 files (6 datasets of 1 exposure); 2 files failed" in log


def test_progress_is_logged(tmp_path, products, caplog):
    root = create_repo(tmp_path / "repo")
    batch = stage(tmp_path / "batch", products, [0, 1, 2])
    with (
        Butler.from_config(str(root), writeable=True) as butler,
        caplog.at_level(logging.INFO, "lsst.obs.vista.ingest"),
    ):
        report = ProductIngester(butler, transfer="direct", chunk_size=2, progress_interval=0.0).run([batch])
    assert report.ok and len(report.ingested) == 9 and report.n_datasets == 18
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Read ")]
    assert progress[0].startswith("Read 1/3 main files")
    assert progress[-1].startswith("Read 3/3 main files; 6 files ingested")


def test_butler_finds_the_command_through_its_entry_point():
    env = dict(os.environ, COLUMNS="200")
    command = [BUTLER, "ingest-casu", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    for option in ("--transfer", "--processes", "REPO", "PATH..."):
        assert option in result.stdout


HEADER_DUMPS = sorted(path.name.removesuffix(".hdr.txt") for path in HEADER_DIR.glob("*.hdr.txt"))


@pytest.mark.parametrize("name", HEADER_DUMPS)
def test_header_scanner_reads_every_card_as_astropy_does(tmp_path, name):
    header = read_header_dump(name)
    header["LONGSTR"] = "a string long enough to need CONTINUE cards " * 3
    header["QUOTED"] = "O'Hara's"
    header["HIERARCH ESO TEST LONG KEYWORD"] = "x"
    hdu = HduHeader(0, "".join(card.image for card in header.cards).encode("ascii"))
    cards = {keyword: hdu.get(keyword) for keyword in hdu.keywords()}
    expected = {key: header[key] for key in header if key not in ("", "COMMENT", "HISTORY", "CONTINUE")}
    assert cards == expected
    assert list(cards) == list(expected), "in header order"
    assert hdu.get("ESO TEST LONG KEYWORD") == "x"
    assert hdu.get("ESO TEST LONG") is None, "a HIERARCH keyword does not match a longer one"


def test_merged_header_is_the_primary_updated_by_the_extension():
    primary, extension = read_header_dump("4_cell7"), read_header_dump("4_cell8")
    merged = MergedHeader(*(HduHeader(i, h.tostring().encode()) for i, h in enumerate((primary, extension))))
    expected = primary.copy()
    expected.update(extension)
    for key in ("DATE-OBS", "EXPTIME", "RA", "ESO DET CHIP NO", "ESO OBS ID", "CIR_CPM", "NICOMB"):
        assert merged[key] == expected[key], key
    assert set(merged) == {key for key in expected if key not in ("", "COMMENT", "HISTORY")}
    merged["ASTRO METADATA FIX MODIFIED"] = False
    assert merged["ASTRO METADATA FIX MODIFIED"] is False
    del merged["RA"]
    assert "RA" not in merged and "RA" not in set(merged)
    with pytest.raises(KeyError):
        merged["NOT A CARD"]


def test_header_scanner_walks_hdus_and_detects_truncation(tmp_path, products):
    hdus = scan_hdus(products[0].stack)
    with fits.open(products[0].stack) as expected:
        assert [h.extname for h in hdus[1:]] == [h.name for h in expected[1:]]
        assert [h.shape for h in hdus[1:]] == [h.shape for h in expected[1:]]
        assert [h.kind for h in hdus] == [None, "image", "image"]
    padded = tmp_path / "padded.fit"
    padded.write_bytes(products[0].stack.read_bytes() + b"\0" * 2880)
    assert len(scan_hdus(padded)) == len(hdus), "zero padding after the last HDU is allowed"
    cut = tmp_path / "cut.fit"
    cut.write_bytes(products[0].stack.read_bytes()[:-2880])
    with pytest.raises(FitsStructureError, match="truncated: HDU 2 needs"):
        scan_hdus(cut)


def test_policy_declares_the_contracted_dataset_types():
    policy = policy_for_instrument("VIRCAM")
    assert (policy.run, policy.chain) == (RUN, CHAIN)
    universe = DimensionUniverse()
    declared = {
        name: (set(p.dataset_type(universe).dimensions.required), p.storage_class, p.formatter)
        for name, p in policy.products.items()
    }
    per_detector = {"instrument", "exposure", "detector"}
    per_exposure = {"instrument", "exposure"}
    image = "lsst.obs.vista.formatters.ImageHduFormatter"
    table = "lsst.obs.vista.formatters.TableHduFormatter"
    assert declared == {
        "casu_stack": (per_detector, "ImageV2", image),
        "casu_confidence": (per_detector, "ImageV2", image),
        "casu_catalog": (per_detector, "AstropyTable", table),
        "casu_tile": (per_exposure, "ImageV2", image),
        "casu_tile_confidence": (per_exposure, "ImageV2", image),
        "casu_tile_catalog": (per_exposure, "AstropyTable", table),
    }
    for filename, product in [
        ("v20120924_00582_st.fit", "casu_stack"),
        ("v20120924_00582_st_conf.fit", "casu_confidence"),
        ("v20120924_00582_st_cat.fits", "casu_catalog"),
        ("v20171027_00133_st_tl.fit", "casu_tile"),
        ("v20171027_00133_st_tl_conf.fit.fz", "casu_tile_confidence"),
        ("v20171027_00133_st_tl_cat.fits", "casu_tile_catalog"),
    ]:
        match = policy.classify(filename)
        assert match is not None and match[0].name == product, filename
    assert policy.classify("v20120924_00582.fit") is None
    assert policy.products["casu_stack"].hdu.detector_of("DET1.CHIP12") == 12
    assert policy.products["casu_stack"].hdu.detector_of("APM-BINARYTABLE") is None


def test_policy_rejects_a_pattern_claimed_twice(tmp_path):
    text = (REPO_ROOT / "policy" / "vircam" / "datasets.yaml").read_text()
    broken = tmp_path / "datasets.yaml"
    broken.write_text(text.replace('"*_st_cat.fits", "*_st_cat.fit"', '"*_st_cat.fits", "*_st.fit"'))
    shutil.copy(REPO_ROOT / "policy" / "vircam" / "camera.yaml", tmp_path / "camera.yaml")
    with pytest.raises(ValueError, match=r"Pattern '\*_st.fit' claimed by both casu_stack and casu_catalog"):
        IngestPolicy.from_yaml(
            broken, instrument="VIRCAM", instrument_class="lsst.obs.vista.instrument.Vircam"
        )
