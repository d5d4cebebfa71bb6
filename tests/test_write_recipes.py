"""The write recipes of config/butler/seed*.yaml: a repository created with
each seed writes ``post_isr_image`` with that recipe's compression, and the
lossy ``small`` recipe changes neither the noise ratio nor the PSF fluxes
of the next step beyond 0.2% while adding the quantisation noise its level
predicts."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.daf.butler import Butler, Config, DatasetType

from isr_support import process_ccd_config, read_confidence, read_stack
from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask
from lsst.obs.vista.calibrate.catalog import usable_for_calibration
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.isr.masks import unflagged
from lsst.obs.vista.isr.noise_check import NoiseCheckTask
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

SEED_DIR = Path(__file__).parent.parent / "config" / "butler"
SEEDS = {"lossless": "seed.yaml", "fast": "seed-fast.yaml", "small": "seed-small.yaml"}
QUANTIZE_LEVEL = 16.0
TOLERANCE = 0.002


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One synthetic detector assembled by isr and put into a repository
    created with each seed; the exposure in memory, and per recipe the
    butler and the dataset's file."""
    data = tmp_path_factory.mktemp("data")
    stack = write_pawprint_stack(data, 0, SimulationConfig(size=1024, detectors=(1,), seed=3))
    exposure = (
        VistaIsrTask(config=process_ccd_config())
        .run(read_stack(stack.stack), read_confidence(stack.confidence))
        .outputExposure
    )
    repos = {}
    for recipe, seed in SEEDS.items():
        root = tmp_path_factory.mktemp(recipe)
        Butler.makeRepo(str(root), config=Config(str(SEED_DIR / seed)))
        Vircam().register(Butler.from_config(str(root), writeable=True).registry)
        assert ingest_products(str(root), [str(stack.stack), str(stack.confidence)], "symlink", 1, ["VIRCAM"])
        butler = Butler.from_config(str(root), writeable=True, run="u/test/recipes")
        data_id = butler.query_datasets("casu_stack", collections="VIRCAM/defaults")[0].dataId
        butler.registry.registerDatasetType(
            DatasetType(
                "post_isr_image",
                ("instrument", "exposure", "detector"),
                "VisitImage",
                universe=butler.dimensions,
            )
        )
        ref = butler.put(exposure, "post_isr_image", data_id)
        repos[recipe] = {"butler": butler, "ref": ref, "path": Path(butler.getURI(ref).ospath)}
    return {"exposure": exposure, "repos": repos}


def _headers(path: Path) -> dict[str, fits.Header]:
    with fits.open(path, disable_image_compression=True) as hdus:
        return {hdu.name: hdu.header.copy() for hdu in hdus if hdu.name in ("IMAGE", "MASK", "VARIANCE")}


@pytest.mark.parametrize(
    "recipe, expected",
    [
        ("lossless", {"IMAGE": "GZIP_2", "MASK": "GZIP_2", "VARIANCE": "GZIP_2"}),
        ("fast", {"IMAGE": None, "MASK": "RICE_1", "VARIANCE": None}),
        ("small", {"IMAGE": "RICE_1", "MASK": "RICE_1", "VARIANCE": "RICE_1"}),
    ],
)
def test_each_seed_writes_its_compression(written, recipe, expected):
    """ZCMPTYPE of each plane's HDU (absent: a plain image HDU), and
    quantisation with subtractive dither exactly where the recipe is lossy."""
    headers = _headers(written["repos"][recipe]["path"])
    assert {name: header.get("ZCMPTYPE") for name, header in headers.items()} == expected
    quantized = {name: header.get("ZQUANTIZ") for name, header in headers.items()}
    lossy = "SUBTRACTIVE_DITHER_2" if recipe == "small" else None
    assert quantized == {"IMAGE": lossy, "MASK": None, "VARIANCE": lossy}


@pytest.mark.parametrize("recipe", ["lossless", "fast"])
def test_exact_recipes_read_back_the_same_pixels(written, recipe):
    repo = written["repos"][recipe]
    read = repo["butler"].get(repo["ref"])
    for plane in ("image", "mask", "variance"):
        np.testing.assert_array_equal(getattr(read, plane).array, getattr(written["exposure"], plane).array)


def test_every_recipe_keeps_the_mask_exact(written):
    """RICE_1 on the integer mask plane is lossless, like GZIP_2."""
    for repo in written["repos"].values():
        read = repo["butler"].get(repo["ref"])
        np.testing.assert_array_equal(read.mask.array, written["exposure"].mask.array)


@pytest.fixture(scope="module")
def read_back(written):
    """The lossless and the small exposure as the next step reads them."""
    return {
        recipe: written["repos"][recipe]["butler"].get(written["repos"][recipe]["ref"]) for recipe in SEEDS
    }


def test_small_adds_the_quantisation_noise_its_level_predicts(written, read_back):
    """Quantising with step = sigma / level and subtractive dither adds
    uniform noise of std step / sqrt(12); sigma is the sky noise, measured
    by CFITSIO per tile, whose steps (ZSCALE) the file records."""
    exposure = written["exposure"]
    usable = unflagged(exposure.mask)
    added = (read_back["small"].image.array - read_back["lossless"].image.array)[usable]
    sky_sigma = float(np.sqrt(np.median(exposure.variance.array[usable])))
    predicted = sky_sigma / QUANTIZE_LEVEL / np.sqrt(12.0)
    assert np.std(added) == pytest.approx(predicted, rel=0.1)
    assert abs(np.mean(added)) < 0.05 * predicted
    with fits.open(written["repos"]["small"]["path"], disable_image_compression=True) as hdus:
        steps = np.asarray(hdus["IMAGE"].data["ZSCALE"], dtype=float)
    assert np.median(steps) == pytest.approx(sky_sigma / QUANTIZE_LEVEL, rel=0.1)
    assert np.std(added) == pytest.approx(np.sqrt(np.mean(steps**2) / 12.0), rel=0.02)


def test_small_keeps_the_noise_ratio(read_back):
    """isr's noise check (background noise over sqrt(variance)) on the
    planes read back from each file agrees within 0.2%."""
    task = NoiseCheckTask(config=process_ccd_config().noiseCheck)
    ratios = {
        recipe: task.run(
            exposure.image.array, exposure.variance.array, unflagged(exposure.mask), name=recipe
        ).ratio
        for recipe, exposure in read_back.items()
        if recipe != "fast"
    }
    assert ratios["lossless"] is not None
    assert ratios["small"] == pytest.approx(ratios["lossless"], rel=TOLERANCE)


def test_small_keeps_the_psf_fluxes_of_bright_stars(read_back):
    """calibrateImage on each read-back exposure: the PSF fluxes of the
    bright (S/N > 50) sources usable for calibration (no rejecting flag), matched within 0.5 pixel, agree
    within 0.2%."""
    config = CalibrateImageConfig()
    Vircam().applyConfigOverrides("calibrateImage", config)
    stars = {}
    for recipe in ("lossless", "small"):
        sources = CalibrateImageTask(config=config).run(read_back[recipe], name=recipe).stars
        bright = np.asarray(sources["psfInstFlux"]) > 50 * np.asarray(sources["psfInstFluxErr"])
        stars[recipe] = sources[usable_for_calibration(sources) & bright]
    reference, lossy = stars["lossless"], stars["small"]
    assert len(reference) >= 15
    xy = np.column_stack([np.asarray(lossy["x"]), np.asarray(lossy["y"])])
    matched = 0
    for row in reference:
        distance = np.hypot(xy[:, 0] - row["x"], xy[:, 1] - row["y"])
        nearest = int(np.argmin(distance))
        if distance[nearest] < 0.5:
            matched += 1
            assert lossy["psfInstFlux"][nearest] == pytest.approx(row["psfInstFlux"], rel=TOLERANCE)
    assert matched >= 0.95 * len(reference)
