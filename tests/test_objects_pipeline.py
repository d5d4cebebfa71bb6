"""DRP.yaml#objects,step4,external through a real ``pipetask`` on a small
repository: the two-band synthetic coadds of `object_field` put into a
plain butler repository with its skymap registered, the J visits'
detector images (``preliminary_visit_image`` with their sky regions) and
an external catalogue of the stars' true positions (``butler ingest-refcat
--positions``); then detection to ``object``, ``object_forced_source`` on
the visits and ``external_forced_measurement`` on the coadds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler, DatasetType
from lsst.daf.butler.cli.butler import cli
from lsst.daf.butler.cli.utils import LogCliRunner

import coadd_field as field
import object_field
from commands import ROOT, invoke
from lsst.obs.vista import Vircam
from lsst.obs.vista.objects import CoaddNoise, DetectCoaddPeaksConfig, light_curve, read_with_metadata
from lsst.obs.vista.skymap import RegisterSkyMapConfig, register_skymap

pytestmark = pytest.mark.slow

SKYMAP = "objects_test"
OUTPUT = "u/test/objects"
EXTERNAL = "external_catalog"
FIRST_EXTERNAL_ID = 9_000_000_000
INPUTS = f"coadds,skymaps,visits,refcats/{EXTERNAL}"


def ingest_external(root: Path, truth) -> None:
    """The stars' true positions as an external catalogue, ingested."""
    table = Table()
    table["id"] = FIRST_EXTERNAL_ID + np.arange(np.count_nonzero(truth.is_star), dtype=np.int64)
    table["ra"], table["dec"] = truth.ra[truth.is_star], truth.dec[truth.is_star]
    path = root / "external.parquet"
    table.write(path, format="parquet")
    result = LogCliRunner().invoke(
        cli, ["ingest-refcat", str(root), EXTERNAL, str(path), "--positions", "id,ra,dec"]
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("objects_repo")
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    Vircam().register(butler.registry)
    config = RegisterSkyMapConfig()
    config.name = SKYMAP
    config.skyMap.name = "discrete"
    config.skyMap["discrete"] = field.skymap_config()
    register_skymap(butler, config)
    base = field.make_base(tmp_path_factory.mktemp("objects_base"))
    truth = object_field.truth()
    dataset_type = DatasetType(
        "deep_coadd", ("skymap", "tract", "patch", "band"), "CellCoadd", universe=butler.dimensions
    )
    butler.registry.registerDatasetType(dataset_type)
    butler.collections.register("coadds")
    patch = field.skymap()[0].find_patch(*field.CENTRE).id
    for k, band in enumerate(object_field.BANDS):
        coadd = object_field.coadd(base, truth, band, seed=20 + k)
        butler.put(coadd, dataset_type, skymap=SKYMAP, tract=0, patch=patch, band=band, run="coadds")
    object_field.put_visits(butler, base, truth, band="J")
    ingest_external(root, truth)
    # One graph per subset, as Rubin runs its steps: in one graph the visits would restrict the
    # coadd bands to theirs (J), and one query joins no more than two spatial families.
    for subsets in ("objects", "step4", "external"):
        invoke(
            "pipetask", "run", "--register-dataset-types", "-b", root, "-i", INPUTS, "-o", OUTPUT,
            "-p", f"{ROOT / 'pipelines' / 'VIRCAM' / 'DRP.yaml'}#{subsets}", "-d", f"skymap='{SKYMAP}'",
        )  # fmt: skip
    return root


def test_object_table_written(repository: Path) -> None:
    butler = Butler.from_config(str(repository), collections=[OUTPUT])
    for name in ("object_detection", "object_forced_measurement"):
        assert {ref.dataId["band"] for ref in butler.query_datasets(name)} == set(object_field.BANDS)
    (ref,) = butler.query_datasets("object")
    table = butler.get(ref)
    assert len(table) > 150 and np.count_nonzero(table["detect_isPrimary"]) > 150
    assert {"J_psfFlux", "Ks_psfFlux", "refBand", "objectId"} <= set(table.colnames)
    assert len(np.unique(table["objectId"])) == len(table)


def test_detection_noise_reaches_measurement(repository: Path) -> None:
    """The real noise detectCoaddPeaks records in each band's table metadata
    is what the measurement tasks read (the butler strips it by default)."""
    butler = Butler.from_config(str(repository), collections=[OUTPUT])
    max_lag = DetectCoaddPeaksConfig().maxLag
    for ref in butler.query_datasets("object_detection"):
        noise = CoaddNoise.from_metadata(read_with_metadata(butler.getDeferred(ref)).meta, max_lag)
        assert noise is not None and 0.5 < noise.pixel_ratio < 2.0


def test_forced_sources_and_light_curve(repository: Path) -> None:
    butler = Butler.from_config(str(repository), collections=[OUTPUT])
    refs = butler.query_datasets("object_forced_source")
    assert {(ref.dataId["visit"], ref.dataId["detector"]) for ref in refs} == {
        (visit.visit, detector) for visit in field.VISITS for detector in (1, 2)
    }
    table = butler.get("object", skymap=SKYMAP, tract=0)
    primary = table[table["detect_isPrimary"]]
    brightest = primary[np.nanargmax(primary["J_psfFlux"])]
    curve = light_curve(butler, int(brightest["objectId"]), skymap=SKYMAP)
    assert len(curve) >= 3 and set(curve["band"]) == {"J"}
    flux, error = np.asarray(curve["psfFlux"]), np.asarray(curve["psfFluxErr"])
    assert np.all(np.abs(flux - brightest["J_psfFlux"]) < 5 * np.hypot(error, brightest["J_psfFluxErr"]))


def test_external_forced_measurement(repository: Path) -> None:
    butler = Butler.from_config(str(repository), collections=[OUTPUT])
    assert {ref.dataId["band"] for ref in butler.query_datasets("external_forced_measurement")} == set(
        object_field.BANDS
    )
    patch = field.skymap()[0].find_patch(*field.CENTRE).id
    measured = butler.get("external_forced_measurement", skymap=SKYMAP, tract=0, band="Ks", patch=patch)
    assert len(measured) > 150 and np.all(measured["externalId"] >= FIRST_EXTERNAL_ID)
    assert np.count_nonzero(measured["psfFlux"] / measured["psfFluxErr"] > 5) > 100
    fusion = butler.get("external_object", skymap=SKYMAP, tract=0)
    assert len(fusion) == len(measured) and {"J_psfFlux", "Ks_psfFlux", "externalId"} <= set(fusion.colnames)
    assert np.array_equal(fusion["Ks_psfFlux"], measured["psfFlux"])


def test_consolidation_fills_the_bands_a_patch_lacks(repository: Path) -> None:
    """Through ``pipetask``, each ``object_patch``'s ``BANDS`` (table
    metadata, which the butler strips unless asked) reaches
    consolidateObjectTable: a second patch observed in J alone gets Ks
    columns without data."""
    butler = Butler.from_config(str(repository), writeable=True, collections=[OUTPUT])
    (ref,) = butler.query_datasets("object_patch")
    both = butler.get(ref)
    other = 1 if ref.dataId["patch"] == 0 else 0
    j_only = both[[name for name in both.colnames if not name.startswith("Ks_")]]
    j_only["patch"] = other
    j_only.meta["BANDS"] = "J"
    butler.collections.register("u/test/j_only")
    butler.put(j_only, ref.datasetType, skymap=SKYMAP, tract=0, patch=other, run="u/test/j_only")
    invoke(
        "pipetask", "run", "-b", repository, "-i", f"u/test/j_only,{OUTPUT}", "-o", "u/test/consolidated",
        "-t", "lsst.obs.vista.objects.ConsolidateObjectTableTask:consolidateObjectTable",
        "-d", f"skymap='{SKYMAP}'",
    )  # fmt: skip
    table = butler.get("object", skymap=SKYMAP, tract=0, collections="u/test/consolidated")
    assert len(table) == 2 * len(both) and set(table.colnames) == set(both.colnames)
    lacking = table["patch"] == other
    assert np.all(np.isnan(table["Ks_psfFlux"][lacking])) and np.all(table["Ks_pixelFlags_nodata"][lacking])
    assert np.array_equal(table["Ks_psfFlux"][~lacking], both["Ks_psfFlux"], equal_nan=True)
