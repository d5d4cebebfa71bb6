"""The same ingest and ProcessCcd pipeline against a PostgreSQL registry
(a real server, started for this module) give what they give against
SQLite; two ingests started at the same time into it both succeed."""

import subprocess

import psycopg
import pytest
from lsst.daf.butler import Butler, ButlerConfig

import lsst.obs.vista  # noqa: F401  (registers the VIRCAM translator for reading)
from commands import BIN, ROOT, invoke, run, simulate
from conftest import SERIAL_OUTPUT
from postgres_server import PostgresServer, find_postgres_bin

SEED = ROOT / "config" / "butler" / "seed.yaml"
OUTPUTS = ("post_isr_image", "preliminary_visit_image", "single_visit_star")
OUTPUT = "u/test/run"
"""processCcd.py's output in the PostgreSQL repository (all three stacks)."""
THIRD = "u/test/third"
"""processCcd.py's output of the third stack in the SQLite repository."""
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server programs (Debian package postgresql; .ci/run installs it)")
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def repos(server, processed_vircam, processed_vircam_template, tmp_path_factory):
    """Three stacks of two detectors: in SQLite, this module's copy of the
    shared `processed_vircam` (the first two stacks, processed by
    processCcd.py -j 1 into `SERIAL_OUTPUT`) with the third ingested after
    them and processed into `THIRD`; in PostgreSQL, the same three stacks
    ingested by two concurrent ingests and processed by -j 2 into `OUTPUT`."""
    shared = processed_vircam_template.parent  # the shared simulation: --stacks 2, seed 5
    first, refcat = shared / "vircam", shared / "gaia.fits"
    root = tmp_path_factory.mktemp("postgres")
    second = root / "second"
    common = ("--size", "256", "--detectors", "1,2", "--seed", "5")
    simulate(second, "--stacks", "1", "--first-index", "2", *common)

    sqlite = processed_vircam
    invoke("butler", "ingest-casu", sqlite, second, "--transfer", "copy")
    with Butler.from_config(str(sqlite)) as butler:
        processed = {
            ref.dataId["exposure"]
            for ref in butler.query_datasets("post_isr_image", collections=SERIAL_OUTPUT)
        }
        (third,) = {record.id for record in butler.query_dimension_records("exposure")} - processed
    run(BIN / "processCcd.py", sqlite, "--id", "instrument=VIRCAM", "--id", f"exposure={third}", "-o", THIRD)

    postgres = root / "postgres"
    seed = root / "seed-postgresql.yaml"
    seed.write_text(f"includeConfigs: {SEED}\nregistry:\n  db: {server.create_database('butler')}\n")
    invoke("butler", "create", "--seed-config", seed, postgres)
    ingests = [
        subprocess.Popen(
            [str(BIN / "butler"), "ingest-casu", str(postgres), str(sim), "--transfer", "copy"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        for sim in (first, second)
    ]
    concurrent = [(ingest.wait(), ingest.stdout.read()) for ingest in ingests]

    invoke("butler", "ingest-refcat", postgres, "gaia_dr3", refcat)
    run(BIN / "processCcd.py", postgres, "--id", "instrument=VIRCAM", "-o", OUTPUT, "-j", "2")
    return {"sqlite": sqlite, "postgres": postgres, "concurrent": concurrent}


def test_the_registry_is_on_the_server(repos, server):
    assert ButlerConfig(str(repos["postgres"]))["registry", "db"] == server.url("butler")
    with Butler.from_config(str(repos["postgres"])) as butler:
        datasets = sum(
            len(butler.query_datasets(dataset_type, collections="*", find_first=False, explain=False))
            for dataset_type in butler.registry.queryDatasetTypes()
        )
    with psycopg.connect(server.url("butler")) as db:
        (rows,) = db.execute("SELECT count(*) FROM dataset").fetchone()
    assert rows == datasets > 0


def test_two_concurrent_ingests_both_succeed(repos):
    for returncode, output in repos["concurrent"]:
        assert returncode == 0, output[-3000:]
    datasets = {}
    for name in ("sqlite", "postgres"):
        with Butler.from_config(str(repos[name])) as butler:
            datasets[name] = {
                dataset_type: sorted(
                    (ref.dataId.required_values, ref.run)
                    for ref in butler.query_datasets(dataset_type, collections="VIRCAM/defaults")
                )
                for dataset_type in ("casu_stack", "casu_confidence", "casu_catalog")
            }
            exposures = {record.id for record in butler.query_dimension_records("exposure")}
            assert len(exposures) == 3 and len(butler.query_dimension_records("visit")) == 3
    assert datasets["postgres"] == datasets["sqlite"]
    assert len(datasets["postgres"]["casu_stack"]) == 6


def test_the_pipeline_gives_what_it_gives_on_sqlite(repos):
    with (
        Butler.from_config(str(repos["sqlite"])) as sqlite,
        Butler.from_config(str(repos["postgres"])) as postgres,
    ):
        for name in OUTPUTS:
            refs = [
                {
                    ref.dataId.required_values: ref
                    for ref in butler.query_datasets(name, collections=collections)
                }
                for butler, collections in ((sqlite, [SERIAL_OUTPUT, THIRD]), (postgres, OUTPUT))
            ]
            assert len(refs[0]) == 6 and refs[0].keys() == refs[1].keys(), name
            for data_id, ref in refs[0].items():
                results = [sqlite.get(ref), postgres.get(refs[1][data_id])]
                if name == "single_visit_star":
                    tables = [result.as_array() for result in results]
                    assert tables[0].dtype == tables[1].dtype and tables[0].tobytes() == tables[1].tobytes()
                else:
                    for plane in ("image", "mask", "variance"):
                        planes = [getattr(result, plane).array for result in results]
                        assert planes[0].tobytes() == planes[1].tobytes(), (name, plane)
