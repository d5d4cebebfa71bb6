"""DRP.yaml#step3 through a real ``pipetask`` on the shared processed VIRCAM
repository: a skymap registered with ``butler register-skymap``, direct
warps of both visits, and a cell-based ``deep_coadd`` per patch and band
that a process without this package reads; then the objects of two of its
patches (DRP.yaml#objects, #step4) through ``multiBandDriver.py`` and bps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from astropy.io import fits

from commands import BIN, ROOT, invoke
from conftest import SERIAL_OUTPUT

pytestmark = pytest.mark.slow

SKYMAP_CONFIG = ROOT / "config" / "skymap" / "discrete_example.py"
SMALL_PATCHES = "skyMap.discrete.tractBuilder.cells.numCellsPerPatchInner=6"
"""The example skymap with patches of 6 x 6 cells instead of 20 x 20: the two
small visits fall on 6 patches instead of 4, and each warp and coadd has
1200 x 1200 pixels instead of 3300 x 3300."""
PIPELINE = ROOT / "pipelines" / "VIRCAM" / "DRP.yaml"
OUTPUT = "u/test/coadd"


def run(*command: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=ROOT)


def stop_after_first_quantum(command: list[object], task: str) -> tuple[int, list[str]]:
    """Run a command and send it SIGTERM as soon as its log says the first
    quantum of ``task`` is done, so that the signal comes while the next
    one is running; return its exit status and standard error lines."""
    process = subprocess.Popen(
        [str(c) for c in command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if f"Execution of task '{task}'" in line:
                process.send_signal(signal.SIGTERM)
                lines += [rest.rstrip("\n") for rest in process.stderr]
                break
        process.wait(timeout=300)
    finally:
        process.kill()
    return process.returncode, lines


def driver_in_process(command: click.Command, prog: str, *args: object) -> tuple[int, list[str]]:
    """Run a driver's click command in this process (the mistakes it names
    stop it before any pipetask starts: no interpreter start-up to pay);
    return its exit status and error lines."""
    from lsst.daf.butler.cli.utils import LogCliRunner

    result = LogCliRunner().invoke(command, [str(arg) for arg in args], prog_name=prog)
    return result.exit_code, result.stderr.splitlines()


@pytest.fixture(scope="module")
def coadd_driver_runs(
    processed_vircam: Path,
) -> tuple[Path, tuple[int, list[str]], subprocess.CompletedProcess]:
    """The processed repository with step3 run into `OUTPUT` by
    ``coaddDriver.py``: stopped by SIGTERM after its first warp, then
    resumed by the same command.  Returns the repository, the stopped run's
    status and log lines, and the resumed run."""
    invoke("butler", "register-skymap", processed_vircam, "-C", SKYMAP_CONFIG, "-c", SMALL_PATCHES)
    command = [
        BIN / "coaddDriver.py", processed_vircam, "--skymap", "discrete_example", "-i", SERIAL_OUTPUT,
        "-o", OUTPUT,
    ]  # fmt: skip
    stopped = stop_after_first_quantum(command, "makeDirectWarp")
    resumed = run(*command)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return processed_vircam, stopped, resumed


@pytest.fixture(scope="module")
def coadded(coadd_driver_runs: tuple[Path, tuple[int, list[str]], subprocess.CompletedProcess]) -> Path:
    """The processed repository with every warp and coadd of step3 in `OUTPUT`."""
    return coadd_driver_runs[0]


def test_coadd_driver_stopped_by_sigterm_says_how_to_resume(
    coadd_driver_runs: tuple[Path, tuple[int, list[str]], subprocess.CompletedProcess],
) -> None:
    """SIGTERM reaches pipetask through coaddDriver.py, which exits with
    128 + SIGTERM and the command that resumes; the resumed run replaces
    what the stopped quantum left (its outputs are compared with an
    uninterrupted run's in `test_bps_submit_one_job_per_patch`)."""
    _, (status, lines), resumed = coadd_driver_runs
    assert status == 128 + signal.SIGTERM, "\n".join(lines[-30:])
    assert lines[-1].startswith(
        f"coaddDriver.py: stopped by SIGTERM; the finished quanta's outputs are kept in {OUTPUT}; "
        "to resume, re-run this command: coaddDriver.py "
    ), lines[-1]
    assert "--extend-run --skip-existing --clobber-outputs" in resumed.stderr


def test_warps_and_coadds_written(coadded: Path) -> None:
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    warps = butler.query_datasets("direct_warp", explain=False)
    noise = butler.query_datasets("direct_warp_noise0", explain=False)
    coadds = butler.query_datasets("deep_coadd", explain=False)
    n_images = butler.query_datasets("deep_coadd_n_image", explain=False)
    visits = {ref.dataId["visit"] for ref in warps}
    assert len(visits) == 2
    assert {ref.dataId for ref in warps} == {ref.dataId for ref in noise}
    assert coadds and {ref.dataId for ref in coadds} == {ref.dataId for ref in n_images}
    patches_with_warps = {(ref.dataId["tract"], ref.dataId["patch"]) for ref in warps}
    assert {(ref.dataId["tract"], ref.dataId["patch"]) for ref in coadds} == patches_with_warps


def test_coadd_written_with_the_seeds_coadd_recipe(coadded: Path) -> None:
    """The seed's ``coadd`` recipe (lsst-images' formatter): each cell's PSF
    kernel one GZIP_2 tile, the other planes lsst-images' default, GZIP_2 in
    tiles of one cell."""
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    ref = butler.query_datasets("deep_coadd", explain=False)[0]
    with fits.open(butler.getURI(ref).ospath, disable_image_compression=True) as hdus:
        psf, image = hdus["PSF"].header, hdus["IMAGE"].header
    assert psf["ZCMPTYPE"] == "GZIP_2" and [psf[f"ZTILE{k}"] for k in range(1, 5)] == [41, 41, 1, 1]
    assert image["ZCMPTYPE"] == "GZIP_2" and (image["ZTILE1"], image["ZTILE2"]) == (150, 150)


def test_warps_written_with_their_mask_as_one_cube(coadded: Path, tmp_path: Path) -> None:
    """The seed's WarpFormatter writes each warp's mask in its in-memory
    layout, one (bytes, y, x) cube in tiles of one byte of a cell, and
    lsst-images reads it back, whole and by strips, as the mask it reads
    from lsst-images' default layout."""
    from lsst.daf.butler import Butler
    from lsst.images import Box, Interval
    from lsst.images.serialization import read_archive, write_archive

    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    for dataset_type in ("direct_warp", "direct_warp_noise0"):
        ref = butler.query_datasets(dataset_type, explain=False)[0]
        path = butler.getURI(ref).ospath
        with fits.open(path, disable_image_compression=True) as hdus:
            header = hdus["MASK"].header
        assert header["ZNAXIS"] == 3 and [header[f"ZTILE{k}"] for k in (1, 2, 3)] == [150, 150, 1], header
        native = read_archive(path)
        default_path = tmp_path / f"{dataset_type}.fits"
        write_archive(native, default_path)
        with fits.open(default_path, disable_image_compression=True) as hdus:
            assert hdus["MASK"].header["ZNAXIS"] == 2  # lsst-images' default: a 32-bit image per 32 planes
        default = read_archive(default_path)
        assert native.mask.schema == default.mask.schema and native.mask.array.any()
        np.testing.assert_array_equal(native.mask.array, default.mask.array)
        box = Box(y=Interval(native.bbox.y.start + 150, native.bbox.y.start + 300), x=native.bbox.x)
        np.testing.assert_array_equal(read_archive(path, bbox=box).mask.array, native.mask[box].array)


def test_coadd_readable_without_this_package(coadded: Path) -> None:
    """A fresh interpreter that imports only daf_butler reads the coadd: its
    image in nJy, cell PSFs that evaluate, provenance naming both visits."""
    script = f"""
import sys
import numpy as np
from lsst.daf.butler import Butler
butler = Butler.from_config({str(coadded)!r}, collections=[{OUTPUT!r}])
best = None
for ref in butler.query_datasets("deep_coadd", explain=False):
    n_image = butler.get("deep_coadd_n_image", ref.dataId)
    if best is None or n_image.array.max() > best[1].array.max():
        best = (ref, n_image)
ref, n_image = best
coadd = butler.get(ref)
good = ~coadd.mask.get("NO_DATA")
assert str(coadd.unit) == "nJy", coadd.unit
assert n_image.array.max() == 2, n_image.array.max()
assert np.all(np.isfinite(coadd.image.array[good])) and np.all(coadd.variance.array[good] > 0)
assert np.all(np.isnan(coadd.image.array[~good]))
y, x = np.argwhere(n_image.array == 2)[0] + [coadd.bbox.y.start, coadd.bbox.x.start]
kernel = coadd.psf.compute_kernel_image(x=float(x), y=float(y)).array
assert abs(kernel.sum() - 1) < 1e-6, kernel.sum()
assert set(coadd.provenance.inputs["visit"]) and len(set(coadd.provenance.inputs["visit"])) == 2
assert len(coadd.noise_realizations) == 1
assert coadd.metadata["N_INPUTS"] == 2, dict(coadd.metadata)
assert not any(name.startswith("lsst.obs") for name in sys.modules), "imported lsst.obs"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_killed_run_resumes_with_skip_existing(coadded: Path) -> None:
    """A coadd run killed after its warps (here: the coadd of one patch and
    its task metadata removed; assembling the others again would check
    nothing more) resumes with ``--extend-run --skip-existing``: that coadd
    is made again from the same warps, and neither the warps nor the other
    coadds are redone."""
    from lsst.daf.butler import Butler

    def ids(butler: Butler, dataset_type: str) -> set:
        return {ref.id for ref in butler.query_datasets(dataset_type, explain=False)}

    butler = Butler.from_config(str(coadded), collections=[OUTPUT], writeable=True)
    warps = ids(butler, "direct_warp")
    coadds = butler.query_datasets("deep_coadd", explain=False)
    patch = coadds[0].dataId["patch"]
    kept = {ref.id for ref in coadds if ref.dataId["patch"] != patch}
    removed = [
        ref
        for name in (
            "deep_coadd",
            "deep_coadd_n_image",
            "assembleCellCoadd_metadata",
            "assembleCellCoadd_log",
        )
        for ref in butler.query_datasets(name, explain=False)
        if ref.dataId["patch"] == patch
    ]
    assert len(removed) == 4 * (len(coadds) - len(kept))
    butler.pruneDatasets(removed, disassociate=True, unstore=True, purge=True)
    invoke(
        "pipetask", "run", "-b", coadded, "-i", f"{SERIAL_OUTPUT},skymaps", "-o", OUTPUT,
        "--extend-run", "--skip-existing", "-p", f"{PIPELINE}#step3", "-d", "skymap='discrete_example'",
    )  # fmt: skip
    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    assert ids(butler, "direct_warp") == warps
    after = ids(butler, "deep_coadd")
    remade = after - kept
    assert (
        kept <= after and len(remade) == len(coadds) - len(kept) and not remade & {ref.id for ref in removed}
    )


def test_direct_warp_cells_name_the_visit(coadded: Path) -> None:
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    ref = butler.query_datasets("direct_warp", explain=False)[0]
    warp = butler.get(ref)
    contributions = warp.provenance.contributions
    assert set(contributions["visit"]) == {ref.dataId["visit"]}
    assert np.all(contributions["overlap_fraction"] > 0) and np.all(contributions["overlap_fraction"] <= 1)
    covered = ~warp.mask.get("NO_DATA")
    assert covered.any() and np.all(np.isfinite(warp.image.array[covered]))


def test_bps_submit_one_job_per_patch(coadded: Path, tmp_path: Path) -> None:
    """``bps submit bps/DRP-step3.yaml`` (parsl, local site) runs one job per
    patch and writes the same coadds as ``pipetask run``."""
    from lsst.daf.butler import Butler

    output = "u/test/coadd-bps"
    result = subprocess.run(
        [
            str(BIN / "bps"), "submit", str(ROOT / "bps" / "DRP-step3.yaml"), "-b", str(coadded),
            "-i", f"{SERIAL_OUTPUT},skymaps", "-o", output, "-d", "skymap='discrete_example'",
        ],
        capture_output=True, text=True, cwd=tmp_path,
        # bps puts its submission under ${PWD} and runs pipetask from ${PATH}.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PWD": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (submit,) = (tmp_path / "submit" / "u" / "test" / "coadd-bps").iterdir()
    butler = Butler.from_config(str(coadded))
    pipetask = {
        ref.dataId: ref for ref in butler.query_datasets("deep_coadd", collections=[OUTPUT], explain=False)
    }
    batch = {
        ref.dataId: ref for ref in butler.query_datasets("deep_coadd", collections=[output], explain=False)
    }
    assert batch.keys() == pipetask.keys()
    patches = {(data_id["tract"], data_id["patch"]) for data_id in batch}
    jobs = list((submit / "logs" / "coaddPatch").rglob("*.stderr"))
    assert len(jobs) == len(patches)
    for data_id, ref in batch.items():
        ours, theirs = butler.get(ref), butler.get(pipetask[data_id])
        assert np.array_equal(ours.image.array, theirs.image.array, equal_nan=True)


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--skymap", "discrete_exampel"],
            "Error: unknown skymap 'discrete_exampel' (did you mean 'discrete_example'?) "
            "(registered: discrete_example)",
        ),
        (
            ["--skymap", "discrete_example", "--tract", "7"],
            "Error: skymap 'discrete_example' has no tract 7 (its tracts are 0-0)",
        ),
    ],
)
def test_coadd_driver_names_a_bad_skymap_or_tract(coadded: Path, options: list[str], line: str) -> None:
    from lsst.obs.vista.cli.coadd_driver import coadd_driver

    status, lines = driver_in_process(
        coadd_driver, "coaddDriver.py", coadded, *options, "-i", SERIAL_OUTPUT, "-o", "u/test/never"
    )
    assert status == 1 and lines == [line]


def test_coadd_driver_resumes_into_its_output(coadded: Path) -> None:
    """coaddDriver.py into an output that holds every coadd builds the
    step3 graph, finds nothing to do, and says so."""
    result = run(
        BIN / "coaddDriver.py", coadded, "--skymap", "discrete_example", "-i", SERIAL_OUTPUT, "-o", OUTPUT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DRP.yaml#step3" in result.stderr and "--extend-run --skip-existing" in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == f"coaddDriver.py: everything asked for is coadded in {OUTPUT}; nothing to do."
    )


OBJECTS = "u/test/objects"
"""Output collection of ``multiBandDriver.py`` on the coadds of `OUTPUT`."""


@pytest.fixture(scope="module")
def multi_band_driver_runs(coadded: Path) -> dict[str, object]:
    """DRP.yaml#objects and #step4 run by ``multiBandDriver.py`` on two of
    the coadded patches into `OBJECTS`: stopped by SIGTERM after its first
    detection quantum, then resumed by the same command.  Returns the
    command, the stopped run's status and log lines, what the stopped run
    left in `OBJECTS` and the resumed run."""
    from lsst.daf.butler import Butler, MissingDatasetTypeError

    butler = Butler.from_config(str(coadded), collections=[OUTPUT])
    patches = sorted({ref.dataId["patch"] for ref in butler.query_datasets("deep_coadd", explain=False)})[:2]
    command = [
        BIN / "multiBandDriver.py", coadded, "--skymap", "discrete_example", "-i", OUTPUT, "-o", OBJECTS,
        "-d", f"patch IN ({patches[0]}, {patches[1]})",
    ]  # fmt: skip
    stopped = stop_after_first_quantum(command, "detectCoaddPeaks")
    butler = Butler.from_config(str(coadded), collections=[OBJECTS])
    left = {}
    for name in ("object_detection", "object_patch", "object", "object_forced_source"):
        try:
            left[name] = butler.query_datasets(name, explain=False)
        except MissingDatasetTypeError:  # registered by a run the stop came before
            left[name] = []
    resumed = run(*command)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return {"command": command, "stopped": stopped, "left": left, "resumed": resumed, "patches": patches}


def test_multi_band_driver_stopped_by_sigterm_resumes(multi_band_driver_runs: dict[str, object]) -> None:
    """SIGTERM reaches pipetask through multiBandDriver.py, which exits with
    128 + SIGTERM and the command that resumes, having written no object
    table and nothing half: every dataset it registered has its file.  The
    resumed run finishes the objects and then measures them on the visits
    (its object table is compared with an uninterrupted run's in
    `test_bps_submit_objects_one_job_per_patch`)."""
    from lsst.daf.butler import Butler

    status, lines = multi_band_driver_runs["stopped"]
    assert status == 128 + signal.SIGTERM, "\n".join(lines[-30:])
    assert lines[-1].startswith(
        f"multiBandDriver.py: stopped by SIGTERM; the finished quanta's outputs are kept in {OBJECTS}; "
        "to resume, re-run this command: multiBandDriver.py "
    ), lines[-1]
    left = multi_band_driver_runs["left"]
    assert left["object_detection"] and not left["object_patch"] and not left["object"]
    assert not left["object_forced_source"]
    butler = Butler.from_config(str(multi_band_driver_runs["command"][1]), collections=[OBJECTS])
    assert all(butler.stored_many(left["object_detection"]).values())
    resumed = multi_band_driver_runs["resumed"].stderr
    assert "DRP.yaml#objects" in resumed and "DRP.yaml#step4" in resumed
    assert "--extend-run --skip-existing --clobber-outputs" in resumed
    (ref,) = butler.query_datasets("object", explain=False)
    table = butler.get(ref)
    assert np.count_nonzero(table["detect_isPrimary"]) > 0
    assert {
        (ref.dataId["visit"], ref.dataId["detector"])
        for ref in butler.query_datasets("object_forced_source", explain=False)
    } == {
        (ref.dataId["visit"], ref.dataId["detector"])
        for ref in butler.query_datasets(
            "preliminary_visit_image", collections=[SERIAL_OUTPUT], explain=False
        )
    }


def test_bps_submit_objects_one_job_per_patch(
    multi_band_driver_runs: dict[str, object], tmp_path: Path
) -> None:
    """``bps submit bps/DRP-objects.yaml`` (parsl, local site) runs the
    objects of each patch in one job and writes, uninterrupted, the object
    table that the stopped and resumed multiBandDriver.py wrote, column for
    column."""
    from lsst.daf.butler import Butler

    repo = multi_band_driver_runs["command"][1]
    patches = multi_band_driver_runs["patches"]
    output = "u/test/objects-bps"
    where = f"skymap='discrete_example' AND patch IN ({patches[0]}, {patches[1]})"
    result = subprocess.run(
        [
            str(BIN / "bps"), "submit", str(ROOT / "bps" / "DRP-objects.yaml"), "-b", str(repo),
            "-i", OUTPUT, "-o", output, "-d", where,
        ],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PWD": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (submit,) = (tmp_path / "submit" / "u" / "test" / "objects-bps").iterdir()
    assert len(list((submit / "logs" / "objectsPatch").rglob("*.stderr"))) == len(patches)
    butler = Butler.from_config(str(repo))
    batch = butler.get("object", skymap="discrete_example", tract=0, collections=[output])
    driver = butler.get("object", skymap="discrete_example", tract=0, collections=[OBJECTS])
    assert len(batch) > 0 and batch.colnames == driver.colnames
    for name in batch.colnames:
        ours, theirs = np.asarray(batch[name]), np.asarray(driver[name])
        assert np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"), name


def multi_band_driver_in_process(*args: object) -> tuple[int, list[str]]:
    """Run multiBandDriver.py in this process (the mistakes it names stop it
    before any pipetask starts); return its exit status and error lines."""
    from lsst.obs.vista.cli.multi_band_driver import multi_band_driver

    return driver_in_process(multi_band_driver, "multiBandDriver.py", *args)


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--skymap", "discrete_exampel", "-i", OUTPUT],
            "Error: unknown skymap 'discrete_exampel' (did you mean 'discrete_example'?) "
            "(registered: discrete_example)",
        ),
        (
            ["--skymap", "discrete_example", "-i", SERIAL_OUTPUT],
            f"Error: no deep_coadd on skymap 'discrete_example' in {SERIAL_OUTPUT}; make the coadds first "
            "(coaddDriver.py)",
        ),
        (
            ["--skymap", "discrete_example", "-i", OUTPUT, "--external", "hsc_pdr3"],
            "Error: no external catalogue 'hsc_pdr3' (refcats/hsc_pdr3 does not exist); ingest it first: "
            "butler ingest-refcat REPO hsc_pdr3 FILE... --positions ID,RA,DEC",
        ),
        (
            ["--skymap", "discrete_example", "-i", OUTPUT, "-c", "detectCoadPeaks:thresholdValue=3"],
            "Error: -c detectCoadPeaks:thresholdValue=3: no task 'detectCoadPeaks' runs (tasks: "
            "consolidateObjectTable, detectCoaddPeaks, forcedPhotCcd, forcedPhotObjects, "
            "measureObjectsRef, mergeCoaddDetections, writeObjectTable)",
        ),
    ],
)
def test_multi_band_driver_names_bad_input(coadded: Path, options: list[str], line: str) -> None:
    """Each mistake is one line before anything runs."""
    status, lines = multi_band_driver_in_process(coadded, *options, "-o", "u/test/never")
    assert status == 1 and lines == [line]


def test_multi_band_driver_names_an_unknown_collection(coadded: Path) -> None:
    status, lines = multi_band_driver_in_process(
        coadded, "--skymap", "discrete_example", "-i", "u/test/coadds", "-o", "u/test/never"
    )
    assert status == 1 and lines == [
        f"Error: {coadded}: No collection with name 'u/test/coadds' found (did you mean 'u/test/coadd'?)."
    ]


def test_multi_band_driver_finds_nothing_to_do(multi_band_driver_runs: dict[str, object]) -> None:
    """Run again into an output holding every object and forced source,
    multiBandDriver.py builds both graphs, finds nothing to do, and says so."""
    result = run(*multi_band_driver_runs["command"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        result.stderr.splitlines()[-1]
        == f"multiBandDriver.py: everything asked for is measured in {OBJECTS}; nothing to do."
    )


def test_multi_band_driver_refuses_an_external_catalogue_its_output_lacks(
    multi_band_driver_runs: dict[str, object], tmp_path: Path
) -> None:
    """An output made without an external catalogue cannot take its
    measurements (pipetask refuses an output chain whose inputs differ):
    one line says so before anything runs."""
    from astropy.table import Table
    from lsst.daf.butler import Butler
    from lsst.daf.butler.cli.butler import cli
    from lsst.daf.butler.cli.utils import LogCliRunner

    repo = multi_band_driver_runs["command"][1]
    butler = Butler.from_config(str(repo), collections=[OBJECTS])
    objects = butler.get("object", skymap="discrete_example", tract=0)
    positions = Table({"id": np.arange(len(objects)), "ra": objects["coord_ra"], "dec": objects["coord_dec"]})
    positions.write(tmp_path / "positions.parquet")
    ingest = [
        "ingest-refcat",
        str(repo),
        "positions",
        str(tmp_path / "positions.parquet"),
        "--positions",
        "id,ra,dec",
    ]
    result = LogCliRunner().invoke(cli, ingest)
    assert result.exit_code == 0, result.output
    status, lines = multi_band_driver_in_process(
        *multi_band_driver_runs["command"][1:], "--external", "positions"
    )
    assert status == 1 and lines == [
        f"Error: {OBJECTS} was made without refcats/positions (or before its latest ingest) in its inputs; "
        "measure the external catalogue into a new output collection"
    ]
