"""Reference catalogues: ``butler ingest-refcat`` of the real Gaia chunks of
tests/data into real SQLite repositories, and `load_reference_stars`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.time import Time
from lsst.daf.butler import Butler
from lsst.sphgeom import Angle, Circle, HtmPixelization, LonLat, UnitVector3d

from lsst.obs.vista.ingest import ProductIngester
from lsst.obs.vista.refcat import (
    GAIA_COLUMNS,
    TWOMASS_COLUMNS,
    RefcatIngestReport,
    RefcatSchemaError,
    htm7_overlapping,
    ingest_refcat,
    load_reference_stars,
    standardize_columns,
)
from lsst.obs.vista.sim import TWOMASS_JDATE, SimulationConfig, write_twomass_catalog

DATA = Path(__file__).parent / "data" / "decam_cp"
CHUNKS = sorted(DATA.glob("testcase*/reference/gaia-chunk-*.fits"))
BIN = Path(sys.executable).parent
CHAIN = "refcats/gaia_dr3"
N_ROWS = 1159
"""Rows of the five chunks: 1 + 0 + 148 (testcase4) and 113 + 897 (testcase6)."""

TRIXELS = {223592, 223593, 223595, 223716, 223718, 223719, 240160, 240656, 240864}
"""htm7 trixels of the chunks' rows."""


def chunk(name: str) -> Path:
    (path,) = (p for p in CHUNKS if p.name == name)
    return path


def ingest_cli(repo: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "butler", "ingest-refcat", repo, "gaia_dr3", *files], capture_output=True, text=True
    )


def ingest_here(
    repo: Path, *files: Path, caplog: pytest.LogCaptureFixture
) -> tuple[RefcatIngestReport, list]:
    """Ingest in this process; the report and the log lines."""
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="lsst.obs.vista.refcat"),
        Butler.from_config(str(repo), writeable=True) as butler,
    ):
        report = ingest_refcat(butler, "gaia_dr3", files)
    return report, [
        f"{r.levelname}: {r.getMessage()}" for r in caplog.records if r.name == "lsst.obs.vista.refcat"
    ]


def new_repo(path: Path) -> Path:
    Butler.makeRepo(str(path))
    return path


def contents(repo: Path) -> tuple[list, dict]:
    """Collections and shards (trixel -> dataset ID) of a repository."""
    with Butler.from_config(str(repo)) as butler:
        collections = sorted(butler.collections.query("*"))
        if not collections:
            return collections, {}
        refs = butler.query_datasets("gaia_dr3", collections=CHAIN, explain=False)
        return collections, {ref.dataId["htm7"]: ref.id for ref in refs}


def shards_of(repo: Path) -> dict[int, Table]:
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_datasets("gaia_dr3", collections=CHAIN)
        return {ref.dataId["htm7"]: butler.get(ref) for ref in refs}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every Gaia chunk of tests/data, ingested with the command line."""
    root = new_repo(tmp_path_factory.mktemp("refcat") / "repo")
    result = ingest_cli(root, *CHUNKS)
    assert result.returncode == 0, result.stderr
    assert f"Ingested {N_ROWS} rows into 9 gaia_dr3 shards (9 new, 0 merged, 0 unchanged)" in result.stderr
    return root


def test_each_row_is_in_the_shard_of_its_htm7_trixel(repo):
    shards = shards_of(repo)
    assert set(shards) == TRIXELS
    assert sum(len(shard) for shard in shards.values()) == N_ROWS
    inputs = np.concatenate([Table.read(path)["source_id"] for path in CHUNKS])
    stored = np.concatenate([shard["source_id"] for shard in shards.values()])
    assert sorted(stored) == sorted(inputs)
    pixelization = HtmPixelization(7)
    for trixel, shard in shards.items():
        triangle = pixelization.triangle(trixel)
        assert all(
            triangle.contains(UnitVector3d(LonLat.fromDegrees(ra, dec)))
            for ra, dec in zip(shard["ra"], shard["dec"], strict=True)
        ), trixel
        assert shard["ra"].unit == u.deg and shard["pmra"].unit == u.mas / u.yr
        assert shard["phot_g_mean_mag"].unit == u.mag and shard["ref_epoch"].unit == u.yr
        assert shard.colnames == list(GAIA_COLUMNS)


def test_two_parameter_solutions_keep_masked_proper_motions(repo):
    shard = shards_of(repo)[240656]
    source = vstack([Table.read(chunk(name)) for name in ("gaia-chunk-03559.fits", "gaia-chunk-03687.fits")])
    source = source[np.isin(source["source_id"], shard["source_id"])]
    assert (
        np.count_nonzero(np.ma.getmaskarray(shard["pmra"]))
        == np.count_nonzero(np.ma.getmaskarray(source["pmra"]))
        > 0
    )


def test_reingest_is_a_noop_that_says_so(repo):
    before = contents(repo)
    result = ingest_cli(repo, *CHUNKS)
    assert result.returncode == 0, result.stderr
    assert "Nothing new: the 9 gaia_dr3 shards these files touch hold their rows already" in result.stderr
    assert contents(repo) == before


def test_second_file_merges_into_the_shard_it_shares(tmp_path, caplog):
    root = new_repo(tmp_path / "repo")
    assert ingest_here(root, chunk("gaia-chunk-03687.fits"), caplog=caplog)[0].new == [240160, 240656, 240864]
    first = shards_of(root)
    assert {trixel: len(shard) for trixel, shard in first.items()} == {240160: 1, 240656: 875, 240864: 21}
    report, log = ingest_here(root, chunk("gaia-chunk-03559.fits"), caplog=caplog)
    assert report.ok and report.merged == [240656] and not report.new
    assert "into 1 gaia_dr3 shards (0 new, 1 merged, 0 unchanged)" in log[-1]
    merged = shards_of(root)
    assert {trixel: len(shard) for trixel, shard in merged.items()} == {240160: 1, 240656: 988, 240864: 21}
    assert np.all(np.diff(merged[240656]["source_id"]) > 0)
    with Butler.from_config(str(root)) as butler:
        runs = butler.collections.get_info(CHAIN).children
        assert len(runs) == 2
        (ref,) = butler.query_datasets("gaia_dr3", collections=CHAIN, htm7=240656)
        assert ref.run == runs[0], "the merged shard is found first"


def test_a_row_given_again_replaces_the_stored_one(tmp_path, caplog):
    root = new_repo(tmp_path / "repo")
    original = chunk("gaia-chunk-03458.fits")
    assert ingest_here(root, original, caplog=caplog)[0].ok
    corrected = Table.read(original)
    corrected["pmra"] = [12.5]
    path = tmp_path / "corrected.fits"
    corrected.write(path)
    assert ingest_here(root, path, caplog=caplog)[0].merged == [223716]
    ((trixel, shard),) = shards_of(root).items()
    assert trixel == 223716 and len(shard) == 1 and shard["pmra"][0] == 12.5


def bad_copy(tmp_path: Path, change: Callable[[Table], object]) -> Path:
    """A real chunk with one change, written as a new file."""
    bad = Table.read(chunk("gaia-chunk-03559.fits"))
    change(bad)
    path = tmp_path / "bad.fits"
    bad.write(path)
    return path


def test_file_missing_pmra_fails_the_command_with_one_line_and_leaves_the_repository_unchanged(
    repo, tmp_path
):
    path = bad_copy(tmp_path, lambda table: table.remove_column("pmra"))
    before = contents(repo)
    result = ingest_cli(repo, chunk("gaia-chunk-03458.fits"), path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR: " in line]
    assert errors == [
        f"lsst.obs.vista.refcat ERROR: {path}[HDU 1]: missing column 'pmra'",
        "lsst.obs.vista.refcat ERROR: Nothing ingested: 1 of 2 files failed.",
    ]
    assert contents(repo) == before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda table: table.replace_column("ra", table["ra"].astype(str)),
            "column 'ra' holds text, not a number",
        ),
        (
            lambda table: setattr(table["dec"], "unit", "mag"),
            "column 'dec' has unit 'mag', not convertible to 'deg'",
        ),
        (
            lambda table: table.remove_columns(["pmdec", "phot_g_mean_mag"]),
            "missing columns 'phot_g_mean_mag', 'pmdec'",
        ),
        (
            lambda table: table["ra"].__setitem__([0, 5], [400.0, -10.0]),
            "column 'ra' has 2 values outside [0, 360) deg",
        ),
        (lambda table: table["ra"].__setitem__(3, 360.0), "column 'ra' has 1 value outside [0, 360) deg"),
        (lambda table: table["dec"].__setitem__(7, np.inf), "column 'dec' has 1 value null or not finite"),
        (
            lambda table: (table["dec"].__setitem__(0, -90.5), table["ra"].__setitem__(1, np.nan)),
            "column 'ra' has 1 value null or not finite; column 'dec' has 1 value outside [-90, 90] deg",
        ),
    ],
)
def test_mistyped_column_is_named_on_one_line_and_nothing_is_written(repo, tmp_path, caplog, change, problem):
    path = bad_copy(tmp_path, change)
    before = contents(repo)
    report, log = ingest_here(repo, path, caplog=caplog)
    assert not report.ok and report.failed == {path: f"{path}[HDU 1]: {problem}"}
    assert log == [f"ERROR: {path}[HDU 1]: {problem}", "ERROR: Nothing ingested: 1 of 1 files failed."]
    assert contents(repo) == before


def test_declination_beyond_the_pole_fails_the_command_with_one_line_and_writes_nothing(repo, tmp_path):
    """dec = 100 used to end in a traceback from the htm7 indexing."""
    path = bad_copy(tmp_path, lambda table: table["dec"].__setitem__(4, 100.0))
    before = contents(repo)
    result = ingest_cli(repo, chunk("gaia-chunk-03458.fits"), path)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if " INFO: " not in line] == [
        f"lsst.obs.vista.refcat ERROR: {path}[HDU 1]: column 'dec' has 1 value outside [-90, 90] deg",
        "lsst.obs.vista.refcat ERROR: Nothing ingested: 1 of 2 files failed.",
    ]
    assert contents(repo) == before


def test_empty_table_alone_is_an_error(repo, tmp_path):
    path = bad_copy(tmp_path, lambda table: table.remove_rows(slice(None)))
    before = contents(repo)
    result = ingest_cli(repo, path)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if " INFO: " not in line] == [
        f"lsst.obs.vista.refcat ERROR: {path}: no rows",
        "lsst.obs.vista.refcat ERROR: Nothing ingested: 1 of 1 files failed.",
    ]
    assert contents(repo) == before


def test_empty_chunk_next_to_others_is_named_and_the_others_are_ingested(tmp_path, caplog):
    """A catalogue cut to a region may have empty chunks: the real
    gaia-chunk-03459.fits of testcase4 has no rows."""
    root = new_repo(tmp_path / "repo")
    empty, full = chunk("gaia-chunk-03459.fits"), chunk("gaia-chunk-03458.fits")
    report, log = ingest_here(root, empty, full, caplog=caplog)
    assert report.ok and report.n_rows == 1 and report.new == [223716]
    assert [line for line in log if not line.startswith("INFO: ")] == [
        f"WARNING: {empty}: no rows; ingesting the rows of the other files"
    ]


def test_fifo_is_refused_unopened(repo, tmp_path):
    """A FIFO passes the command line's check that the file exists; opening
    it would wait for a writer for ever."""
    fifo = tmp_path / "gaia-chunk-99999.fits"
    os.mkfifo(fifo)
    before = contents(repo)
    result = subprocess.run(
        [BIN / "butler", "ingest-refcat", repo, "gaia_dr3", fifo],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if " INFO: " not in line] == [
        f"lsst.obs.vista.refcat ERROR: {fifo}: a FIFO (named pipe), not a regular file or directory; "
        "not opened",
        "lsst.obs.vista.refcat ERROR: Nothing ingested: 1 of 1 files failed.",
    ]
    assert contents(repo) == before


def test_failure_while_writing_leaves_nothing_behind(tmp_path):
    root = new_repo(tmp_path / "repo")
    with Butler.from_config(str(root), writeable=True) as butler:
        put = butler.put
        calls = []

        def failing_put(*args, **kwargs):
            calls.append(args)
            if len(calls) == 3:
                raise OSError("disk full")
            return put(*args, **kwargs)

        butler.put = failing_put
        with pytest.raises(OSError, match="disk full"):
            ingest_refcat(butler, "gaia_dr3", CHUNKS)
    assert contents(root) == ([], {})
    written = (
        [path for path in (root / "refcats").rglob("*") if path.is_file()]
        if (root / "refcats").exists()
        else []
    )
    assert written == []


def test_butler_lists_ingest_refcat_with_its_arguments():
    result = subprocess.run(
        [BIN / "butler", "ingest-refcat", "--help"], capture_output=True, text=True, check=True
    )
    assert "REPO NAME FILE..." in result.stdout
    assert "refcats/NAME" in result.stdout


def star_table(ra, dec, pmra, pmdec, ref_epoch=2016.0) -> Table:
    """Reference rows with every Gaia column: the first rows of a real chunk,
    numbered from 1 in order and moved to the given positions and proper
    motions (NaN: none)."""
    table = Table.read(chunk("gaia-chunk-03559.fits"))[: len(ra)]
    table["source_id"] = np.arange(1, len(ra) + 1)
    table["ra"], table["dec"] = ra, dec
    table["pmra"], table["pmdec"] = pmra, pmdec
    table["ref_epoch"] = ref_epoch
    return standardize_columns(table, "test")


def test_proper_motion_of_100_mas_per_year_moves_a_star_1_arcsec_in_10_years():
    catalog = star_table(
        ra=[10.0, 10.0, 10.0], dec=[60.0, 60.0, 60.0], pmra=[100, 0, np.nan], pmdec=[0, -100, np.nan]
    )
    epoch = Time(2026.0, format="jyear", scale="tcb")
    stars = load_reference_stars({1: catalog}, epoch=epoch)
    start = SkyCoord(catalog["ra"].quantity, catalog["dec"].quantity)
    moved = SkyCoord(stars["coord_ra"].quantity, stars["coord_dec"].quantity)
    separation = start.separation(moved).to_value(u.mas)
    np.testing.assert_allclose(separation[:2], 1000, atol=1e-3)
    assert separation[2] < 1e-6, "no proper motion: the catalogue position"
    # Eastwards, by 1 arcsec / cos(60 deg) = 2 arcsec of right ascension.
    assert (stars["coord_ra"][0] - 10.0) * 3.6e6 == pytest.approx(2000, abs=0.1)
    assert stars["coord_dec"][1] - 60.0 == pytest.approx(-1 / 3600, abs=1e-10)
    assert start[0].position_angle(moved[0]).deg == pytest.approx(90, abs=1e-3)
    assert list(stars["pm_flag"]) == [False, False, True]
    grown = np.hypot(catalog["ra_error"][2], 10 * 10)
    assert stars["coord_raErr"][2] == pytest.approx(grown, rel=1e-6)
    expected = np.hypot(catalog["dec_error"][1], 10 * catalog["pmdec_error"][1])
    assert stars["coord_decErr"][1] == pytest.approx(expected, rel=1e-6)
    assert stars["coord_raErr"].unit == u.mas and stars["coord_ra"].unit == u.deg


def test_loader_deduplicates_and_cuts_to_the_region():
    catalog = star_table(ra=[10.0, 10.1], dec=[-30.0, -30.0], pmra=[0, 0], pmdec=[0, 0])
    stars = load_reference_stars({1: catalog, 2: catalog}, epoch=Time("2020-01-01"))
    assert list(stars["id"]) == sorted(catalog["source_id"])
    region = Circle(UnitVector3d(LonLat.fromDegrees(10.0, -30.0)), Angle.fromDegrees(0.01))
    (star,) = load_reference_stars({1: catalog}, epoch=Time("2020-01-01"), region=region)
    assert star["id"] == catalog["source_id"][0]
    assert star["phot_g_mean_magErr"] == pytest.approx(
        2.5 / np.log(10) / catalog["phot_g_mean_flux_over_error"][0], rel=1e-6
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda table: table.remove_column("pmra"), "missing column 'pmra'"),
        (lambda table: setattr(table["ra"], "unit", None), "column 'ra' has no unit, not 'deg'"),
    ],
)
def test_shard_with_other_columns_is_named_on_one_line(change, problem):
    shard = star_table(ra=[10.0], dec=[-30.0], pmra=[0], pmdec=[0])
    change(shard)
    with pytest.raises(RefcatSchemaError) as error:
        load_reference_stars({240656: shard}, epoch=Time("2020-01-01"))
    assert str(error.value) == f"gaia_dr3 shard htm7=240656: {problem}"


def test_envelope_of_a_decam_cutout_holds_its_gaia_stars_and_the_butler_finds_them(repo):
    with Butler.from_config(str(repo), writeable=True) as butler:
        report = ProductIngester(butler, instrument="DECam", transfer="direct").run([DATA / "testcase4"])
        assert report.ok
        (record,) = butler.query_dimension_records("visit_detector_region", instrument="DECam", visit=630780)
        trixels = htm7_overlapping(record.region)
        refs = butler.query_datasets("gaia_dr3", collections=CHAIN, data_id=record.dataId)
        shards = {ref.dataId["htm7"]: butler.get(ref) for ref in refs}
        (exposure,) = butler.query_dimension_records("exposure", instrument="DECam", exposure=630780)
    rows = Table.read(chunk("gaia-chunk-03586.fits"))
    on_ccd = np.asarray(record.region.contains(np.radians(rows["ra"]), np.radians(rows["dec"])), dtype=bool)
    assert np.count_nonzero(on_ccd) == 3
    pixelization = HtmPixelization(7)
    assert {
        pixelization.index(UnitVector3d(LonLat.fromDegrees(ra, dec)))
        for ra, dec in zip(rows["ra"][on_ccd], rows["dec"][on_ccd], strict=True)
    } <= set(trixels)
    assert set(shards) == set(trixels) & TRIXELS
    stars = load_reference_stars(shards, epoch=exposure.timespan.begin, region=record.region)
    assert sorted(stars["id"]) == sorted(rows["source_id"][on_ccd])
    assert np.all((stars["phot_g_mean_mag"] > 17.9) & (stars["phot_g_mean_mag"] < 20))


def test_collection_of_another_kind_stops_the_ingest_before_anything_is_written(tmp_path, caplog):
    root = new_repo(tmp_path / "repo")
    with Butler.from_config(str(root), writeable=True) as butler:
        butler.collections.register(CHAIN)
    report, log = ingest_here(root, chunk("gaia-chunk-03458.fits"), caplog=caplog)
    assert not report.ok and report.run is None
    assert log[-1] == f"ERROR: Nothing ingested: collection {CHAIN} is a RUN collection, not a CHAINED one"
    with Butler.from_config(str(root)) as butler:
        assert butler.collections.query("*") == [CHAIN]
        assert not butler.registry.queryDatasetTypes("gaia_dr3")


def test_twomass_catalogue_through_the_command_line(tmp_path):
    """A 2MASS-PSC-like table (the simulator's, PSC column names) is ingested
    with --schema 2mass under pts_key as source_id, a re-run writes
    nothing, and the loader gives J, H, Ks with their errors at the
    catalogue positions, growing the errors since jdate."""
    config = SimulationConfig(size=256, detectors=(1,), filter_name="J", star_density=3.0)
    written = write_twomass_catalog(config, tmp_path / "twomass.fits")
    repo = new_repo(tmp_path / "repo")
    command = [
        BIN / "butler",
        "ingest-refcat",
        "--schema",
        "2mass",
        repo,
        "twomass_psc",
        tmp_path / "twomass.fits",
    ]
    first = subprocess.run(command, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"Ingested {len(written)} rows into" in first.stderr
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing new" in again.stderr, again.stderr
    with Butler.from_config(str(repo)) as butler:
        refs = butler.query_datasets("twomass_psc", collections="refcats/twomass_psc")
        shards = {ref.dataId["htm7"]: butler.get(ref) for ref in refs}
    assert all(shard.colnames == list(TWOMASS_COLUMNS) for shard in shards.values())
    epoch = Time("2012-09-25T06:00:00", scale="utc")
    stars = load_reference_stars(shards, epoch=epoch, name="twomass_psc")
    stars.sort("id")
    assert list(stars["id"]) == sorted(written["pts_key"])
    written.sort("pts_key")
    np.testing.assert_array_equal(stars["coord_ra"], written["ra"])
    for band in "jhk":
        np.testing.assert_array_equal(stars[f"{band}_m"], written[f"{band}_m"])
        np.testing.assert_array_equal(stars[f"{band}_mErr"], written[f"{band}_msigcom"])
    assert stars["pm_flag"].all()
    years = (epoch - Time(TWOMASS_JDATE, format="jd")).to_value(u.yr)
    grown = np.hypot(written["err_maj"][0] * 1000, 10 * years)
    assert stars["coord_decErr"][0] == pytest.approx(grown, rel=1e-5)


def test_twomass_file_without_pts_key_is_one_line(tmp_path):
    """A 2MASS table without the PSC key fails on one line naming the file
    and the column, and nothing is written."""
    config = SimulationConfig(size=256, detectors=(1,), filter_name="J", star_density=3.0)
    table = write_twomass_catalog(config, tmp_path / "twomass.fits")
    del table["pts_key"]
    table.write(tmp_path / "no_key.fits")
    repo = new_repo(tmp_path / "repo")
    result = subprocess.run(
        [BIN / "butler", "ingest-refcat", "--schema", "2mass", repo, "twomass_psc", tmp_path / "no_key.fits"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{tmp_path / 'no_key.fits'}[HDU 1]: missing column 'pts_key'" in result.stderr
    with Butler.from_config(str(repo)) as butler:
        assert not butler.registry.queryDatasetTypes("twomass_psc")
