"""DRP.yaml#objects through a real ``pipetask`` on a small repository: the
two-band synthetic coadds of `object_field` put into a plain butler
repository with its skymap registered, then detection to ``object``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler, DatasetType

import coadd_field as field
import object_field
from conftest import BIN, ROOT
from lsst.obs.vista import Vircam
from lsst.obs.vista.skymap import RegisterSkyMapConfig, register_skymap

pytestmark = pytest.mark.slow

SKYMAP = "objects_test"
OUTPUT = "u/test/objects"


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
    result = subprocess.run(
        [
            str(BIN / "pipetask"), "run", "--register-dataset-types", "-b", str(root), "-i", "coadds,skymaps",
            "-o", OUTPUT, "-p", f"{ROOT / 'pipelines' / 'VIRCAM' / 'DRP.yaml'}#objects",
            "-d", f"skymap='{SKYMAP}'",
        ],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
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
