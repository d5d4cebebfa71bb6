"""processCcd.py -j 2: concurrent single-process pipetask runs on balanced groups
of data IDs, chained into one output collection, give exactly what -j 1 gives;
a failing group is named, the others' outputs are chained, and the last line
names the failed quanta and their causes."""

import subprocess
import sys
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

import lsst.obs.vista  # noqa: F401  (registers the VIRCAM translator for reading)
from lsst.obs.vista.cli.sharded_run import split_balanced, where_for_group

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
OUTPUTS = (
    "post_isr_image",
    "preliminary_visit_image",
    "preliminary_visit_image_background",
    "single_visit_star",
)
pytestmark = pytest.mark.slow


def _run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def repo(processed_vircam):
    """Two small stacks of two detectors processed with -j 1 (``u/test/j1``,
    the shared `processed_vircam`) and with -j 2."""
    sharded = _run(
        BIN / "processCcd.py", processed_vircam, "--id", "instrument=VIRCAM", "-o", "u/test/j2", "-j", "2"
    )
    return {"path": processed_vircam, "sharded": sharded}


def test_split_balanced_and_where():
    ids = [(5, d) for d in range(1, 6)] + [(6, 1)]
    groups = split_balanced(ids, 4)
    assert [len(g) for g in groups] == [2, 2, 1, 1] and sum(groups, []) == ids
    assert split_balanced(ids[:1], 3) == [ids[:1]]
    assert where_for_group("VIRCAM", groups[2] + groups[3]) == (
        "instrument='VIRCAM' AND ((exposure=5 AND detector IN (5)) OR (exposure=6 AND detector IN (1)))"
    )


def test_prints_the_commands_first(repo):
    stdout = repo["sharded"].stdout
    lines = stdout.splitlines()
    assert lines[0].startswith("$ (pipetask qgraph -b ") and lines[0].endswith(") &")
    assert "butler transfer-from-graph" in lines[1] and "--output-run u/test/j2/" in lines[1]
    assert lines[2] == "$ wait" and lines[3].startswith("$ butler collection-chain ")
    assert "[part0] " in repo["sharded"].stderr and "[part1] " in repo["sharded"].stderr


def test_one_chain_with_the_same_datasets_as_serial(repo):
    with Butler.from_config(str(repo["path"])) as butler:
        serial = butler.collections.get_info("u/test/j1").children
        sharded = butler.collections.get_info("u/test/j2").children
        assert [run.rsplit("/", 1)[1] for run in sharded[:2]] == ["part0", "part1"]
        assert sharded[2:] == serial[1:]
        for name in OUTPUTS:
            one = {ref.dataId: ref for ref in butler.query_datasets(name, collections="u/test/j1")}
            two = {ref.dataId: ref for ref in butler.query_datasets(name, collections="u/test/j2")}
            assert len(one) == 4 and one.keys() == two.keys(), name
            runs = {ref.run for ref in two.values()}
            assert runs == set(sharded[:2]), name
            if name == "single_visit_star":
                for data_id, ref in one.items():
                    tables = [butler.get(ref).as_array(), butler.get(two[data_id]).as_array()]
                    assert tables[0].dtype == tables[1].dtype and tables[0].tobytes() == tables[1].tobytes()
            elif name != "preliminary_visit_image_background":
                for data_id, ref in one.items():
                    images = [butler.get(ref), butler.get(two[data_id])]
                    for plane in ("image", "mask", "variance"):
                        planes = [getattr(image, plane).array for image in images]
                        assert planes[0].tobytes() == planes[1].tobytes(), (name, plane)


def test_a_failing_group_is_named_and_its_failed_quanta_end_the_output(repo):
    with Butler.from_config(str(repo["path"])) as butler:
        last = butler.query_datasets(
            "casu_stack", collections="VIRCAM/defaults", order_by=["exposure", "detector"]
        )[-1]
        path = Path(butler.getURI(last).ospath)
    path.unlink()
    result = _run(BIN / "processCcd.py", repo["path"], "-o", "u/test/fail", "-j", "2", check=False)
    assert result.returncode == 1
    assert "processCcd.py: group part1 (2 data IDs, run u/test/fail/" in result.stderr
    assert "group part0" not in result.stderr
    *_, resume, failed = result.stderr.splitlines()
    assert resume == (
        "processCcd.py: 2 of 4 data IDs are processed in u/test/fail; to resume once the cause is dealt "
        f"with, re-run this command: processCcd.py {repo['path']} -o u/test/fail -j 2"
    )
    exposure = last.dataId["exposure"]
    causes = [
        f"isr@instrument=VIRCAM,detector={detector},exposure={exposure} (MissingInputError: isr: "
        f"casu_stack@instrument=VIRCAM,detector={detector},exposure={exposure} is registered but its file "
        f"{path} is missing from the datastore; re-ingest it or remove the dataset (`butler prune-datasets`) "
        "to run without this exposure and detector.)"
        for detector in (1, 2)
    ]
    assert failed == f"processCcd.py: 2 quanta failed: {'; '.join(causes)}"
    # The group that succeeded is chained; the chain has no output of a
    # failed quantum.
    with Butler.from_config(str(repo["path"])) as butler:
        (run, *_) = butler.collections.get_info("u/test/fail").children
        assert run.endswith("/part0")
        for name in OUTPUTS:
            refs = butler.query_datasets(name, collections="u/test/fail", find_first=False)
            assert {ref.run for ref in refs} == {run} and len(refs) == 2, name
