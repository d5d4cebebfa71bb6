"""Shared helpers of the tests/test_isr*.py modules: reading synthetic CASU
files with the ingest formatter's own reader, and the VIRCAM and WFCAM configs."""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from lsst.images import Image

from lsst.obs.vista import Vircam, Wfcam
from lsst.obs.vista._resources import CONFIG_DIR
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask
from lsst.obs.vista.formatters import flat_metadata, read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.refcat import TWOMASS_COLUMNS, TWOMASS_NAMES, read_reference_file, shard_rows
from lsst.obs.vista.sim import SimulationConfig, write_twomass_catalog


def merged_header(path: Path, extname: str) -> dict:
    """Primary + extension cards as a flat dict, as the formatter's metadata."""
    with fits.open(path) as hdus:
        return flat_metadata([hdus[0].header, hdus[extname].header])


def read_stack(path: Path, extname: str = "DET1.CHIP1") -> Image:
    """A stack extension as the ingest formatter reads it: float32, ADU."""
    return read_image_hdu(path, extname, unit=u.adu)


def read_confidence(path: Path, extname: str = "DET1.CHIP1") -> Image:
    """A confidence extension as the ingest formatter reads it: integers."""
    return read_image_hdu(path, extname, unit=None)


def read_truth(path: Path, extname: str = "DET1.CHIP1") -> dict[str, np.ndarray]:
    """Truth planes of one detector: variance, model, nsat."""
    with fits.open(path) as hdus:
        return {
            plane.lower(): np.array(hdus[f"{plane}.{extname}"].data)
            for plane in ("VARIANCE", "MODEL", "NSAT")
        }


def vircam_config() -> VistaIsrConfig:
    """The task config as any VIRCAM pipeline gets it (config/vircam/isr.py)."""
    config = VistaIsrConfig()
    Vircam().applyConfigOverrides("isr", config)
    return config


def process_ccd_config() -> VistaIsrConfig:
    """The task config of pipelines/VIRCAM/ProcessCcd.yaml#isr (plus processCcd.py)."""
    config = vircam_config()
    config.load(str(CONFIG_DIR / "vircam" / "processCcd.py"))
    return config


def wfcam_process_ccd_config() -> VistaIsrConfig:
    """The task config of pipelines/WFCAM/ProcessCcd.yaml#isr (plus processCcd.py)."""
    config = VistaIsrConfig()
    Wfcam().applyConfigOverrides("isr", config)
    config.load(str(CONFIG_DIR / "wfcam" / "processCcd.py"))
    return config


BRIGHTENING = 1.1
"""Factor `fit_brightened_against_twomass` scales an exposure by after isr."""


def fit_brightened_against_twomass(
    simulation: SimulationConfig, field: dict, config: CalibrateImageConfig, directory: Path
) -> tuple[Image, object]:
    """Calibrate ``field``'s exposure made `BRIGHTENING` times brighter
    against a 2MASS-like catalogue of ``simulation``'s stars as the separate
    photometric catalogue (Gaia-like ``field["shards"]`` for astrometry), and
    check that the zero point is fitted against ``twomass_psc`` within 0.01
    mag of the truth's and that PHOTOCAL_OFFSET is fitted minus header.
    Return the brightened exposure and the task's result."""
    write_twomass_catalog(simulation, directory / "twomass.fits")
    table = read_reference_file(directory / "twomass.fits", columns=TWOMASS_COLUMNS, names=TWOMASS_NAMES)
    exposure = field["exposure"].copy()
    exposure.image.array[...] *= BRIGHTENING
    exposure.variance.array[...] *= BRIGHTENING**2
    result = CalibrateImageTask(config=config).run(
        exposure,
        reference_shards=field["shards"],
        reference_name="gaia_dr3",
        photometry_shards=shard_rows(table),
        name="twomass",
    )
    metadata = result.exposure.metadata
    true_zero_point = field["truth"].meta["ZPAB"] + 2.5 * math.log10(BRIGHTENING)
    assert metadata["PHOTOCAL_SOURCE"] == "fit"
    assert metadata["PHOTOCAL_REFCAT"] == "twomass_psc"
    assert metadata["PHOTOCAL_NSTARS"] >= 10
    assert abs(metadata["PHOTOCAL_ZP"] - true_zero_point) < 0.01
    assert metadata["PHOTOCAL_OFFSET"] == pytest.approx(
        metadata["PHOTOCAL_ZP"] - metadata["PHOTOCAL_ZP_HEADER"]
    )
    return exposure, result
