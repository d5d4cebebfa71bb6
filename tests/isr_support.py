"""Shared helpers of the tests/test_isr*.py modules: reading synthetic CASU
files with the ingest formatter's own reader, and the VIRCAM and WFCAM configs."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from lsst.images import Image

from lsst.obs.vista import Vircam, Wfcam
from lsst.obs.vista._resources import CONFIG_DIR
from lsst.obs.vista.formatters import flat_metadata, read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig


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
