"""``bps submit bps/ProcessCcd.yaml`` with the parsl plugin's local site runs
ProcessCcd in one job per exposure and gives exactly what processCcd.py -j 1
gives; the cluster sites load."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lsst.ctrl.bps import BpsConfig
from lsst.ctrl.bps.parsl.site import SiteConfig
from lsst.daf.butler import Butler

import lsst.obs.vista  # noqa: F401  (registers the VIRCAM translator for reading)
from lsst.obs.vista.batch import bps_submit_command

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
OUTPUTS = ("post_isr_image", "preliminary_visit_image", "single_visit_star")
pytestmark = pytest.mark.slow


def _run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # bps puts its submission under ${PWD}, which a shell would set to the working directory.
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PWD": str(cwd)}
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=environment
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def repo(processed_vircam):
    """Two small stacks of two detectors processed by processCcd.py -j 1
    (``u/test/j1``, the shared `processed_vircam`) and by bps submit
    (submission directory beside the repository)."""
    root = processed_vircam.parent
    command = bps_submit_command(str(processed_vircam), "u/test/bps", "instrument='VIRCAM'")
    submitted = _run(*command, cwd=root)
    (submit,) = (root / "submit" / "u" / "test" / "bps").iterdir()
    return {"path": processed_vircam, "submit": submit, "stdout": submitted.stdout}


def test_one_job_per_exposure(repo):
    with Butler.from_config(str(repo["path"])) as butler:
        exposures = {str(record.id) for record in butler.query_dimension_records("exposure")}
    jobs = {path.name for path in (repo["submit"] / "logs" / "processCcd").iterdir()}
    assert len(exposures) == 2 and jobs == exposures
    for exposure in exposures:
        logs = repo["submit"] / "logs" / "processCcd" / exposure
        log = (logs / f"processCcd_{exposure}.stderr").read_text()
        assert log.count("Execution of task 'isr'") == 2
        assert log.count("Execution of task 'calibrateImage'") == 2


def test_the_same_outputs_as_processccd(repo):
    with Butler.from_config(str(repo["path"])) as butler:
        chain = butler.collections.get_info("u/test/bps").children
        serial = butler.collections.get_info("u/test/j1").children
        assert chain[0].startswith("u/test/bps/") and chain[1:] == serial[1:]
        for name in OUTPUTS:
            refs = [
                {ref.dataId: ref for ref in butler.query_datasets(name, collections=output)}
                for output in ("u/test/j1", "u/test/bps")
            ]
            assert len(refs[0]) == 4 and refs[0].keys() == refs[1].keys(), name
            for data_id, ref in refs[0].items():
                results = [butler.get(ref), butler.get(refs[1][data_id])]
                if name == "single_visit_star":
                    tables = [result.as_array() for result in results]
                    assert tables[0].dtype == tables[1].dtype and tables[0].tobytes() == tables[1].tobytes()
                else:
                    for plane in ("image", "mask", "variance"):
                        planes = [getattr(result, plane).array for result in results]
                        assert planes[0].tobytes() == planes[1].tobytes(), (name, plane)


@pytest.mark.parametrize("site", ["local", "slurm", "htcondor"])
def test_every_site_builds_its_executors(site):
    """Each site of bps/ProcessCcd.yaml resolves to a parsl executor (the
    cluster ones are not started: there is no cluster here)."""
    config = BpsConfig(str(ROOT / "bps" / "ProcessCcd.yaml"))
    config["computeSite"] = site
    # bps defines it at submission; Slurm's site names its jobs by it.
    config[".bps_defined.uniqProcName"] = "test_sites"
    executors = SiteConfig.from_config(config).get_executors()
    assert len(executors) >= 1 and all(executor.label for executor in executors)
    assert executors[0].provider.label == {"local": "local", "slurm": "slurm", "htcondor": "condor"}[site]
