"""A repository made by a plain ``butler create`` (no seed) runs both
instruments' ProcessCcd pipelines: the first of our commands to touch it
adds the BackgroundMap formatter to its butler.yaml, every output reads back
in a Python process that has only daf_butler and lsst-images, and pixels,
catalogues and metadata are exactly those of a repository created with the
package's seed; where butler.yaml cannot be changed, the commands say in one
line what to add, before doing anything."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from lsst.daf.butler import Butler, Config

from file_modes import without_root_override
from lsst.obs.vista._resources import CONFIG_DIR
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = ROOT / "config" / "butler" / "seed.yaml"
DECAM_TRIO = ROOT / "tests" / "data" / "decam_cp" / "testcase4"
INSTRUMENTS = ("VIRCAM", "DECam")
OUTPUTS = (
    "post_isr_image",
    "preliminary_visit_image",
    "preliminary_visit_image_background",
    "single_visit_star",
)
FORMATTER = "lsst.images.formatters.GenericFormatter"


def read_outputs(repo: str, instruments: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every output of ``u/test/<instrument>`` as arrays (pixels, background
    models rendered, catalogues) and JSON strings (metadata, obs_info).

    Uses daf_butler, numpy and json only, so that a fresh interpreter runs
    it as written (`FRESH_INTERPRETER`).
    """
    arrays = {}
    with Butler.from_config(repo) as butler:
        for instrument in instruments:
            for name in outputs:
                for ref in butler.query_datasets(name, collections=f"u/test/{instrument}", explain=False):
                    key = f"{instrument}/{name}/{'-'.join(map(str, ref.dataId.required_values))}"
                    value = butler.get(ref)
                    if name == "single_visit_star":
                        arrays[key] = value.as_array()
                    elif name == "preliminary_visit_image_background":
                        for background in value.values():
                            arrays[f"{key}/{background.name}"] = background.field.render().array
                            subtracted = getattr(value.subtracted, "name", None) == background.name
                            about = [background.description, subtracted]
                            arrays[f"{key}/{background.name}/about"] = np.array(json.dumps(about))
                    else:
                        for plane in ("image", "mask", "variance"):
                            arrays[f"{key}/{plane}"] = getattr(value, plane).array
                        arrays[f"{key}/obs_info"] = np.array(value.obs_info.to_json())
                        metadata = json.dumps(dict(value.metadata), sort_keys=True)
                        arrays[f"{key}/metadata"] = np.array(metadata)
    return arrays


FRESH_INTERPRETER = f"""
import json, sys
import numpy as np
from lsst.daf.butler import Butler
{inspect.getsource(read_outputs)}
np.savez(sys.argv[2], **read_outputs(sys.argv[1], {INSTRUMENTS!r}, {OUTPUTS!r}))
print(json.dumps(sorted(name for name in sys.modules if name.startswith("lsst.obs"))))
"""
"""`read_outputs` of repository ``argv[1]`` into ``argv[2]`` (npz), printing
the ``lsst.obs`` modules that reading imported."""


def _run(*command: str | Path, returncode: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _added_line(repo: Path) -> str:
    return f"{repo / 'butler.yaml'}: added datastore.formatters.BackgroundMap: {FORMATTER}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One small synthetic VIRCAM stack (one detector) and a real DECam CP trio."""
    data = tmp_path_factory.mktemp("data")
    stack = write_pawprint_stack(data, 0, SimulationConfig(size=256, detectors=(1,), seed=5))
    return [stack.stack, stack.confidence, stack.catalog, *sorted(DECAM_TRIO.glob("*.fits"))]


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory, inputs: list[Path]) -> dict:
    """A plain and a seeded repository with the same inputs, both
    instruments processed by processCcd.py into ``u/test/<instrument>``.

    The plain one is made and ingested by the commands (``butler create``,
    ``ingestImages.py``); its butler.yaml is then put back as created, as for
    a repository ingested by other means, so that processCcd.py meets it
    without the formatter too.
    """
    root = tmp_path_factory.mktemp("repos")
    plain, seeded = root / "plain", root / "seeded"
    _run(BIN / "butler", "create", plain)
    created = (plain / "butler.yaml").read_text()
    ingest = _run(BIN / "ingestImages.py", plain, *inputs)
    ingested = (plain / "butler.yaml").read_text()
    (plain / "butler.yaml").write_text(created)

    Butler.makeRepo(str(seeded), config=Config(str(SEED)))
    seed_config = (seeded / "butler.yaml").read_text()
    assert ingest_products(str(seeded), [str(path) for path in inputs], "copy", 1, INSTRUMENTS)

    runs = {}
    for repo in (plain, seeded):
        for instrument in INSTRUMENTS:
            command = (
                BIN / "processCcd.py",
                repo,
                "--id",
                f"instrument={instrument}",
                "-o",
                f"u/test/{instrument}",
            )
            runs[repo.name, instrument] = _run(*command)
    return {
        "plain": plain, "seeded": seeded, "runs": runs, "ingest": ingest,
        "created": created, "ingested": ingested, "seed_config": seed_config,
    }  # fmt: skip


@pytest.fixture(scope="module")
def read_back(repos: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every output of the plain repository as a fresh interpreter reads it,
    the modules that reading imported, and the seeded repository's outputs."""
    out = tmp_path_factory.mktemp("read") / "plain.npz"
    modules = json.loads(_run(sys.executable, "-c", FRESH_INTERPRETER, repos["plain"], out).stdout)
    with np.load(out) as arrays:
        plain = {key: arrays[key] for key in arrays.files}
    return {
        "plain": plain,
        "modules": modules,
        "seeded": read_outputs(str(repos["seeded"]), INSTRUMENTS, OUTPUTS),
    }


def test_the_first_command_adds_the_formatter_once(repos: dict) -> None:
    plain = repos["plain"]
    expected = yaml.safe_load(repos["created"])
    assert "formatters" not in expected["datastore"]
    expected["datastore"]["formatters"] = {"BackgroundMap": FORMATTER}
    # The ingest added the entry and kept the rest; so did processCcd.py
    # (which met the file as created), and the next run found it there.
    assert yaml.safe_load(repos["ingested"]) == expected
    assert repos["ingest"].stderr.count(_added_line(plain)) == 1
    assert repos["runs"]["plain", "VIRCAM"].stderr.splitlines()[0].startswith(_added_line(plain))
    assert _added_line(plain) not in repos["runs"]["plain", "DECam"].stderr
    assert yaml.safe_load((plain / "butler.yaml").read_text()) == expected
    # A seeded repository is left as it was.
    seeded = repos["seeded"]
    assert (seeded / "butler.yaml").read_text() == repos["seed_config"]
    assert not any(
        _added_line(seeded) in run.stderr for (name, _), run in repos["runs"].items() if name == "seeded"
    )


def test_a_fresh_interpreter_reads_every_output(read_back: dict) -> None:
    """Without importing this package; the VIRCAM values that are not
    standard observation info are in the metadata."""
    plain = read_back["plain"]
    assert read_back["modules"] == []
    for instrument in INSTRUMENTS:
        for name in OUTPUTS:
            assert any(key.startswith(f"{instrument}/{name}/") for key in plain), (instrument, name)
    for key, value in plain.items():
        if key.endswith("/obs_info"):
            assert "ext_" not in str(value), key
        if key.startswith("VIRCAM/post_isr_image/") and key.endswith("/metadata"):
            metadata = json.loads(str(value))
            assert metadata["CASU_PRODUCT"] == "pawprint_stack" and metadata["CASU_NCOMBINE"] >= 1
            assert metadata["FLUX_EXPOSURE_TIME"] == metadata["EXPTIME"] > 0


def test_outputs_equal_those_of_a_seeded_repository(read_back: dict) -> None:
    plain, seeded = read_back["plain"], read_back["seeded"]
    assert plain.keys() == seeded.keys()
    for key, value in plain.items():
        other = seeded[key]
        assert value.dtype == other.dtype and value.shape == other.shape, key
        assert value.tobytes() == other.tobytes(), key


def test_exposures_are_written_with_the_seeds_lossless_compression(repos: dict) -> None:
    """lsst-images' default, which a plain repository writes with, is the
    seed's ``lossless`` recipe: GZIP_2 on every plane."""
    for name in ("plain", "seeded"):
        with Butler.from_config(str(repos[name])) as butler:
            for dataset_type in ("post_isr_image", "preliminary_visit_image"):
                refs = butler.query_datasets(dataset_type, collections="u/test/*", find_first=False)
                assert len(refs) == len(INSTRUMENTS)
                for ref in refs:
                    with fits.open(butler.getURI(ref).ospath, disable_image_compression=True) as hdus:
                        compression = {hdu.name: hdu.header.get("ZCMPTYPE") for hdu in hdus[1:4]}
                    assert compression == dict.fromkeys(("IMAGE", "MASK", "VARIANCE"), "GZIP_2"), (name, ref)


def test_a_configuration_that_cannot_change_is_one_line_before_any_work(
    inputs: list[Path], tmp_path: Path
) -> None:
    """butler.yaml read-only (both commands), then its folder read-only."""
    repo = tmp_path / "repo"
    Butler.makeRepo(str(repo))
    config = repo / "butler.yaml"
    before = {path: path.read_bytes() for path in repo.rglob("*")}

    def expected(reason: str) -> list[str]:
        return [
            f"Error: {config} names no formatter for the BackgroundMap storage class (calibrateImage's "
            f"preliminary_visit_image_background) and cannot be changed ({reason}): add the entry "
            f"'BackgroundMap: {FORMATTER}' under its 'datastore:' 'formatters:' keys, or create the "
            f"repository with butler create --seed-config {CONFIG_DIR / 'butler' / 'seed.yaml'}."
        ]

    prefix = without_root_override()
    config.chmod(0o444)
    for command in (
        [BIN / "ingestImages.py", repo, *inputs],
        [BIN / "processCcd.py", repo, "--id", "instrument=VIRCAM"],
    ):
        result = _run(*prefix, *command, returncode=1)
        assert result.stderr.splitlines() == expected("it is not writable"), command
    config.chmod(0o644)
    repo.chmod(0o555)
    try:
        result = _run(*prefix, BIN / "ingestImages.py", repo, *inputs, returncode=1)
    finally:
        repo.chmod(0o755)
    assert result.stderr.splitlines() == expected("its folder is not writable: Permission denied")
    assert {path: path.read_bytes() for path in repo.rglob("*")} == before
    with Butler.from_config(str(repo)) as butler:
        assert butler.query_dimension_records("instrument", explain=False) == []
        assert butler.collections.query("*") == []
