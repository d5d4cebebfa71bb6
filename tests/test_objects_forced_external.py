"""Forced photometry of the coadds at an external catalogue's positions:
the true positions of `object_field`'s stars written as an external FITS
(and Parquet) catalogue with their own ID and column names, ingested into
a plain butler repository as htm7 shards by ``butler ingest-refcat
--positions`` (`ingest_refcat` with `EXTERNAL_COLUMNS`), and measured on
the J coadd in-process.

Checked: the fluxes at the true positions agree with the coadd's own
(reference-band) measurements of the same stars within their errors; the
external IDs are kept; only positions in the patch's inner box are
measured; bad catalogues (missing column, NaN or out-of-range positions)
are refused in one line naming the file, the column and the count, and
nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli
from lsst.daf.butler.cli.utils import LogCliRunner

import coadd_field as field
import object_field
from lsst.obs.vista.objects import (
    ConsolidateExternalTableTask,
    DetectCoaddPeaksTask,
    ForcedPhotExternalTask,
    ForcedPhotObjectsTask,
    MeasureObjectsRefTask,
    MergeCoaddDetectionsTask,
)
from lsst.obs.vista.refcat import EXTERNAL_COLUMNS, ingest_refcat, refcat_collection

NAMES = {"source_id": "object_id", "ra": "RA_ICRS", "dec": "DEC_ICRS"}
"""The external files' column names."""

CATALOG = "hsc_objects"

FIRST_ID = 70_000_000_000
"""External IDs: large, unlike any row number."""


@pytest.fixture(scope="module")
def truth():
    return object_field.truth()


@pytest.fixture(scope="module")
def patch_id():
    return field.skymap()[0].find_patch(*field.CENTRE).id


@pytest.fixture(scope="module")
def coadd_objects(tmp_path_factory, truth, patch_id):
    """The J coadd, its merged footprints and its objects' own measurement
    (J as the reference band, then forced at the reference positions: the
    object table's J columns)."""
    base = field.make_base(Path(tmp_path_factory.mktemp("external_base")))
    coadd = object_field.coadd(base, truth, "J", seed=10)
    detection = DetectCoaddPeaksTask().run(coadd)
    merge = MergeCoaddDetectionsTask()
    merge.config.priorityList = ["J"]
    merged = merge.run({"J": detection.detections}, {"J": detection.footprints}, tract=0, patch=patch_id)
    ref = MeasureObjectsRefTask()
    ref.config.priorityList = ["J"]
    reference = ref.run(
        {"J": coadd}, merged.merged, merged.merged_footprints, skymap=field.skymap(), tract=0, patch=patch_id
    ).measurement
    own = (
        ForcedPhotObjectsTask()
        .run(coadd, reference, merged.merged_footprints, detections=detection.detections)
        .measurement
    )
    for column in ("x", "y", "detect_isPrimary"):
        own[column] = reference[column]
    return coadd, merged.merged_footprints, own, detection.detections


def external_table(truth) -> Table:
    """The field's stars as an external catalogue, with a row off the patch."""
    stars = np.nonzero(truth.is_star)[0]
    table = Table()
    table[NAMES["source_id"]] = FIRST_ID + np.arange(stars.size + 1, dtype=np.int64)
    table[NAMES["ra"]] = np.append(truth.ra[stars], field.CENTRE[0] + 0.03)
    table[NAMES["dec"]] = np.append(truth.dec[stars], field.CENTRE[1] + 0.03)
    table["i_psfFlux"] = np.ones(stars.size + 1)
    return table


@pytest.fixture(scope="module")
def repository(tmp_path_factory, truth) -> Path:
    root = tmp_path_factory.mktemp("external_repo")
    Butler.makeRepo(str(root))
    table = external_table(truth)
    half = len(table) // 2
    fits_path, parquet_path = root / "objects_a.fits", root / "objects_b.parquet"
    table[:half].write(fits_path)
    table[half:].write(parquet_path, format="parquet")
    positions = ",".join(NAMES[name] for name in ("source_id", "ra", "dec"))
    result = LogCliRunner().invoke(
        cli,
        ["ingest-refcat", str(root), CATALOG, str(fits_path), str(parquet_path), "--positions", positions],
    )
    assert result.exit_code == 0, result.output
    again = LogCliRunner().invoke(
        cli,
        ["ingest-refcat", str(root), CATALOG, str(fits_path), str(parquet_path), "--positions", positions],
    )
    assert again.exit_code == 0, again.output
    butler = Butler.from_config(str(root))
    # Re-ingesting the same files writes nothing: one run in the chain.
    assert len(butler.collections.get_info(refcat_collection(CATALOG)).children) == 1
    shards = butler.query_datasets(CATALOG, collections=refcat_collection(CATALOG))
    assert sum(len(butler.get(ref)) for ref in shards) == len(table)
    assert butler.get(shards[0]).colnames == ["source_id", "ra", "dec"]
    return root


@pytest.fixture(scope="module")
def measured(repository, coadd_objects, patch_id) -> Table:
    butler = Butler.from_config(str(repository))
    shards = [
        butler.get(ref) for ref in butler.query_datasets(CATALOG, collections=refcat_collection(CATALOG))
    ]
    coadd, footprints, _, detections = coadd_objects
    return (
        ForcedPhotExternalTask()
        .run(coadd, shards, footprints, skymap=field.skymap(), tract=0, patch=patch_id, detections=detections)
        .measurement
    )


def test_fluxes_agree_with_the_coadd_measurements(measured, coadd_objects, truth) -> None:
    _, _, reference, _ = coadd_objects
    reference = reference[reference["detect_isPrimary"] & ~reference["psfFlux_flag"]]
    distance = np.hypot(
        np.asarray(measured["x"])[:, None] - np.asarray(reference["x"])[None],
        np.asarray(measured["y"])[:, None] - np.asarray(reference["y"])[None],
    )
    nearest = distance.argmin(axis=1)
    matched = distance[np.arange(len(measured)), nearest] < 1.0
    ours, theirs = measured[matched], reference[nearest[matched]]
    error = np.hypot(ours["psfFluxErr"], theirs["psfFluxErr"]) / np.sqrt(2)
    difference = (np.asarray(ours["psfFlux"]) - np.asarray(theirs["psfFlux"])) / np.asarray(error)
    print(
        f"{matched.sum()} stars: |external - own| / error median {np.median(np.abs(difference)):.3f}, "
        f"95th percentile {np.percentile(np.abs(difference), 95):.3f}"
    )
    assert matched.sum() > 150
    assert np.median(np.abs(difference)) < 0.3
    assert np.percentile(np.abs(difference), 95) < 1.0
    aperture = (np.asarray(ours["ap06Flux"]) - np.asarray(theirs["ap06Flux"])) / np.asarray(
        theirs["ap06FluxErr"]
    )
    assert np.percentile(np.abs(aperture), 95) < 1.0


def test_errors_use_the_noise_detection_recorded(repository, measured, coadd_objects, patch_id) -> None:
    """The coadd's real noise comes from object_detection's metadata, as
    forcedPhotObjects takes it: a recorded pixel ratio twice as large
    doubles every error."""
    coadd, footprints, _, detections = coadd_objects
    doubled = detections.copy(copy_data=False)
    doubled.meta = dict(detections.meta, NOISE_PIXEL_RATIO=2.0 * detections.meta["NOISE_PIXEL_RATIO"])
    butler = Butler.from_config(str(repository))
    shards = [
        butler.get(ref) for ref in butler.query_datasets(CATALOG, collections=refcat_collection(CATALOG))
    ]
    again = (
        ForcedPhotExternalTask()
        .run(coadd, shards, footprints, skymap=field.skymap(), tract=0, patch=patch_id, detections=doubled)
        .measurement
    )
    np.testing.assert_allclose(again["psfFluxErr"], 2.0 * measured["psfFluxErr"], rtol=1e-12)
    np.testing.assert_array_equal(again["psfFlux"], measured["psfFlux"])


def test_positions_option_needs_three_names(repository) -> None:
    result = LogCliRunner().invoke(
        cli,
        [
            "ingest-refcat",
            str(repository),
            CATALOG,
            str(repository / "objects_a.fits"),
            "--positions",
            "id,ra",
        ],
    )
    assert result.exit_code == 2 and "not three column names ID,RA,DEC" in result.output


def test_external_ids_kept(measured, truth) -> None:
    n_stars = int(np.count_nonzero(truth.is_star))
    ids = np.asarray(measured["externalId"])
    assert len(np.unique(ids)) == len(ids) == n_stars
    assert np.all((ids >= FIRST_ID) & (ids < FIRST_ID + n_stars))
    assert str(measured["psfFlux"].unit) == "nJy" and str(measured["coord_ra"].unit) == "deg"
    assert all(measured[name].description for name in measured.colnames)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.remove_column("object_id"), "missing column 'object_id'"),
        (lambda t: t["DEC_ICRS"].__setitem__(slice(0, 3), np.nan), "column 'DEC_ICRS' has 3 values null"),
        (lambda t: t["RA_ICRS"].__setitem__(slice(0, 2), 400.0), "column 'RA_ICRS' has 2 values outside"),
    ],
)
def test_bad_catalogue_refused(tmp_path, truth, caplog, change, expected) -> None:
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    table = external_table(truth)
    change(table)
    path = tmp_path / "bad.fits"
    table.write(path)
    butler = Butler.from_config(str(root), writeable=True)
    report = ingest_refcat(butler, CATALOG, [path], columns=EXTERNAL_COLUMNS, names=NAMES)
    assert not report.ok
    (line,) = report.failed.values()
    assert "\n" not in line and str(path) in line and expected in line
    assert not butler.collections.query(f"{refcat_collection(CATALOG)}*")


def test_fusion_table(measured, patch_id) -> None:
    """Bands joined per position; a band a patch has no coadd in is no data."""
    other = measured[:5]
    table = (
        ConsolidateExternalTableTask()
        .run({patch_id: {"J": measured}, patch_id + 1: {"J": other, "Ks": other}})
        .table
    )
    assert len(table) == len(measured) + len(other)
    assert {"externalId", "coord_ra", "J_psfFlux", "Ks_psfFlux", "Ks_ap06Flux"} <= set(table.colnames)
    alone = table["patch"] == patch_id
    assert np.all(np.isnan(table["Ks_psfFlux"][alone])) and np.all(table["Ks_psfFlux_flag"][alone])
    assert np.array_equal(table["J_psfFlux"][alone], measured["psfFlux"])
    assert np.array_equal(table["Ks_psfFlux"][~alone], other["psfFlux"])
    assert str(table["J_psfFlux"].unit) == "nJy" and table["Ks_psfFlux"].description.startswith("Ks band")
