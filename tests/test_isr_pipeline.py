"""VistaIsrTask through the middleware: a real SQLite repository, `butler
ingest-casu`, `pipetask run` of pipelines/ProcessCcd.yaml#isr (with -j 2 and
with -C), the legacy export command."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.images import MaskedImage, VisitImage

from commands import invoke
from isr_support import read_confidence, read_truth
from lsst.obs.vista.cli.export_legacy import export_legacy, legacy_file_name
from lsst.obs.vista.isr.legacy_export import legacy_plane_map
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

pytestmark = pytest.mark.slow

PIPELINE = Path(__file__).parent.parent / "pipelines" / "VIRCAM" / "ProcessCcd.yaml"
DEFAULT_RUN = "u/test/isr"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Three stacks of two detectors; the third has no confidence map."""
    data = tmp_path_factory.mktemp("data")
    config = SimulationConfig(size=256, detectors=(1, 2), seed=7)
    stacks = [write_pawprint_stack(data, index, config) for index in range(3)]
    stacks[2].confidence.unlink()
    root = tmp_path_factory.mktemp("repo")
    invoke("butler", "create", root)
    invoke("butler", "register-instrument", root, "lsst.obs.vista.Vircam")
    invoke("butler", "ingest-casu", root, data)
    invoke(
        "pipetask",
        "run",
        "-b",
        str(root),
        "-i",
        "VIRCAM/defaults",
        "-o",
        DEFAULT_RUN,
        "--register-dataset-types",
        "-p",
        f"{PIPELINE}#isr",
    )
    return root, stacks


def exposure_ids(butler):
    return sorted({ref.dataId["exposure"] for ref in butler.query_datasets("casu_stack", "VIRCAM/defaults")})


def test_every_quantum_ran_including_the_one_without_confidence(repo):
    root, _ = repo
    butler = Butler.from_config(str(root), collections=DEFAULT_RUN)
    refs = butler.query_datasets("post_isr_image")
    assert len(refs) == 6
    assert len(butler.query_datasets("casu_confidence", collections="VIRCAM/defaults")) == 4
    models = {}
    for ref in refs:
        models[ref.dataId["exposure"]] = butler.get(ref).metadata["VARIANCE_MODEL"]
    exposures = exposure_ids(butler)
    assert [models[e] for e in exposures] == ["confidence map (CASU)"] * 2 + ["measured background"]


def test_output_reads_back_with_butler_and_lsst_images(repo):
    root, stacks = repo
    butler = Butler.from_config(str(root), collections=DEFAULT_RUN)
    first = exposure_ids(butler)[0]
    ref = butler.find_dataset("post_isr_image", instrument="VIRCAM", exposure=first, detector=1)
    from_butler = butler.get(ref)
    direct = VisitImage.read(butler.getURI(ref).ospath)
    assert isinstance(from_butler, VisitImage)
    assert np.array_equal(direct.variance.array, from_butler.variance.array)
    assert np.array_equal(direct.image.array, from_butler.image.array, equal_nan=True)
    assert direct.mask.compare(from_butler.mask) == {}
    assert direct.band == "z" and direct.detector.id == 1
    assert direct.metadata["NOISE_RATIO"] == from_butler.metadata["NOISE_RATIO"]
    variance_component = butler.get(ref.makeComponentRef("variance"))
    assert np.array_equal(variance_component.array, from_butler.variance.array)
    # Against the truth of the simulation, through the whole chain.
    truth = read_truth(stacks[0].truth)
    confidence = read_confidence(stacks[0].confidence).array
    nominal = np.abs(confidence - 100) <= 5
    ratio = from_butler.variance.array[nominal] / truth["variance"][nominal]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03)


def test_instrument_and_pipeline_config_files_apply(repo):
    root, _ = repo
    butler = Butler.from_config(str(root), collections=DEFAULT_RUN)
    config = butler.get("isr_config")
    # config/vircam/isr.py, through the instrument.
    assert config.fallbackVariance.target.__name__ == "BackgroundVarianceTask"
    assert list(config.masking.noDataValues) == [0.0]
    assert config.noiseCheck.tolerance == 0.05
    # config/vircam/processCcd.py, through the pipeline.
    assert config.noiseCheck.doRescale
    for ref in butler.query_datasets("post_isr_image"):
        metadata = butler.get(ref).metadata
        assert metadata["VARIANCE_RESCALE"] == pytest.approx(metadata["NOISE_RATIO"] ** 2)


def test_config_file_on_the_command_line_retargets_the_variance(repo, tmp_path):
    root, _ = repo
    override = tmp_path / "metadata_variance.py"
    override.write_text(
        "from lsst.obs.vista.isr import MetadataVarianceTask\n"
        "config.variance.retarget(MetadataVarianceTask)\n"
        "config.noiseCheck.doRescale = False\n"
    )
    invoke(
        "pipetask",
        "run",
        "-b",
        str(root),
        "-i",
        "VIRCAM/defaults",
        "-o",
        "u/test/isr-metadata",
        "--register-dataset-types",
        "-p",
        f"{PIPELINE}#isr",
        "-C",
        f"isr:{override}",
        "-d",
        "detector = 1",
    )
    butler = Butler.from_config(str(root), collections="u/test/isr-metadata")
    refs = butler.query_datasets("post_isr_image")
    assert len(refs) == 3
    for ref in refs:
        metadata = butler.get(ref).metadata
        assert metadata["VARIANCE_MODEL"] == "header metadata"
        assert metadata["VARIANCE_RESCALE"] == 1.0
    assert butler.get("isr_config").variance.target.__name__ == "MetadataVarianceTask"


def test_export_legacy_command(repo, tmp_path):
    root, _ = repo
    arguments = [str(root), str(tmp_path / "legacy"), "--collections", DEFAULT_RUN]
    where = "instrument = 'VIRCAM' AND detector = 2"
    result = CliRunner().invoke(export_legacy, [*arguments, "--where", where])
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.output.split()]
    butler = Butler.from_config(str(root), collections=DEFAULT_RUN)
    refs = butler.query_datasets("post_isr_image", where="detector = 2")
    assert sorted(path.name for path in paths) == sorted(legacy_file_name(ref) for ref in refs)
    assert len(paths) == 3
    for ref in refs:
        original = butler.get(ref)
        path = tmp_path / "legacy" / legacy_file_name(ref)
        legacy = MaskedImage.read_legacy(path, plane_map=legacy_plane_map(original.mask.schema))
        assert np.array_equal(legacy.variance.array, original.variance.array)
        assert legacy.mask.compare(original.mask) == {}
        with fits.open(path) as hdus:
            # Pixel values are ADU per DIT; the total integration is kept beside it.
            assert hdus[0].header["EXPTIME"] == original.metadata["FLUX_EXPOSURE_TIME"]
            assert hdus[0].header["EXPTOTAL"] == original.obs_info.exposure_time.to_value("s")
    again = CliRunner().invoke(export_legacy, [*arguments, "--where", where])
    assert again.exit_code == 1
    assert (
        f"{paths[0]} already exists (3 of the 3 files do); pass --overwrite to replace them." in again.output
    )
    empty = "instrument = 'VIRCAM' AND detector = 16"
    nothing = CliRunner().invoke(export_legacy, [*arguments, "--where", empty])
    assert nothing.exit_code == 1
    assert f"No post_isr_image datasets matching {empty!r} in {DEFAULT_RUN}." in nothing.output
