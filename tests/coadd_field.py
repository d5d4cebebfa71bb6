"""A synthetic dithered field for the coadd tests: visits of two VIRCAM-like
detectors side by side, with exactly known stars, Gaussian PSFs, white
noise and photometric scalings, on a small cells skymap.

The detectors are ``preliminary_visit_image``-like `lsst.images.VisitImage`
objects whose observation, detector and mask schema come from a simulated
CASU stack run through VIRCAM's isr; their pixels, WCS, PSF and scaling are
replaced by the truth below.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import astropy.units as u
import astropy.wcs
import numpy as np
from lsst.images import Image, SkyProjection, VisitImage
from lsst.images.psfs import GaussianPointSpreadFunction

from isr_support import process_ccd_config, read_confidence, read_stack, wfcam_process_ccd_config
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import VistaIsrTask
from lsst.obs.vista.isr.assembly import photometric_scaling_from_zero_point
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from lsst.obs.vista.sim.wfcam import write_wfcam_stack
from lsst.obs.vista.skymap import DiscreteSkyMapConfig, make_skymap

SIZE = 400
"""Side of each detector (pixels)."""

PIXEL_SCALE = 0.34
"""Detector pixel scale (arcsec), VIRCAM's."""

GAP = 40
"""Pixels between the two detectors of a visit."""

CENTRE = (150.0, 2.0)
"""Field centre (deg)."""


@dataclasses.dataclass(frozen=True)
class Visit:
    """One visit's truth."""

    visit: int
    offset: tuple[float, float]
    """Pointing offset from `CENTRE` (arcsec, east and north)."""

    rotation: float
    """Rotation of the detector axes (deg)."""

    sigma: float
    """Gaussian PSF sigma (detector pixels)."""

    zero_point: float
    """AB magnitude of one image unit."""

    noise: float
    """White noise sigma (image units)."""


VISITS = (
    Visit(1, (0.0, 0.0), 0.0, 1.6, 27.0, 4.0),
    Visit(2, (11.3, -7.9), 0.3, 1.9, 27.2, 5.0),
    Visit(3, (-9.7, 8.6), -0.2, 1.4, 26.9, 3.5),
    Visit(4, (5.1, 12.4), 0.1, 1.7, 27.1, 4.5),
)


def skymap_config() -> DiscreteSkyMapConfig:
    """One tract at `CENTRE` with 120-pixel cells, 6 cells per patch side."""
    config = DiscreteSkyMapConfig()
    config.raList = [CENTRE[0]]
    config.decList = [CENTRE[1]]
    config.radiusList = [0.04]
    config.pixelScale = 0.2
    config.projection = "TAN"
    config.tractBuilder.name = "cells"
    cells = config.tractBuilder["cells"]
    cells.cellInnerDimensions = [120, 120]
    cells.cellBorder = 20
    cells.numCellsPerPatchInner = 6
    cells.numCellsInPatchBorder = 1
    return config


def detector_wcs(visit: Visit, detector: int, nx: int, ny: int) -> astropy.wcs.WCS:
    """TAN WCS of an ``nx`` x ``ny`` detector; detector 1 west of detector 2."""
    scale = PIXEL_SCALE / 3600.0
    theta = math.radians(visit.rotation)
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [
        CENTRE[0] + visit.offset[0] / 3600.0 / math.cos(math.radians(CENTRE[1])),
        CENTRE[1] + visit.offset[1] / 3600.0,
    ]
    # The pointing is midway between the detectors.
    shift = (nx + GAP) / 2.0 * (1 if detector == 1 else -1)
    wcs.wcs.crpix = [(nx - 1) / 2.0 + 1.0 + shift, (ny - 1) / 2.0 + 1.0]
    wcs.wcs.cd = scale * np.array([[-math.cos(theta), math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    wcs.wcs.set()
    return wcs


def stars(n_side: int = 9, seed: int = 3) -> dict[str, np.ndarray]:
    """A jittered grid of stars over the field: ra, dec (deg) and flux (nJy)."""
    rng = np.random.default_rng(seed)
    half = (SIZE + GAP / 2.0) * PIXEL_SCALE / 3600.0
    t = (np.arange(n_side) + 0.5) / n_side * 2 - 1
    dx, dy = np.meshgrid(t * half * 0.92, t * half * 0.46)
    dx = dx.ravel() + rng.uniform(-1, 1, dx.size) * 2e-4
    dy = dy.ravel() + rng.uniform(-1, 1, dy.size) * 2e-4
    ra = CENTRE[0] + dx / math.cos(math.radians(CENTRE[1]))
    dec = CENTRE[1] + dy
    magnitude = rng.uniform(17.0, 19.0, ra.size)
    flux = (magnitude * u.ABmag).to_value(u.nJy)
    return {"ra": ra, "dec": dec, "flux": flux}


def make_base(
    directory: Path, *, size: int = SIZE, instrument: str = "VIRCAM", filter_name: str = "Z"
) -> VisitImage:
    """A post_isr_image of a simulated CASU stack of ``instrument`` (VIRCAM
    or WFCAM) in ``filter_name``, ``size`` pixels square: the observation,
    detector, band and mask schema of the visit images."""
    config = SimulationConfig(
        instrument=instrument,
        size=size,
        detectors=(1,),
        seed=11,
        star_density=0.2,
        galaxy_density=0.0,
        filter_name=filter_name,
    )
    if instrument == "WFCAM":
        stack = write_wfcam_stack(directory, 0, config)
        image = read_image_hdu(stack.stack, 1, unit=u.adu)
        confidence = read_image_hdu(stack.confidence, 1, unit=None)
        isr_config = wfcam_process_ccd_config()
    else:
        stack = write_pawprint_stack(directory, 0, config)
        image, confidence = read_stack(stack.stack), read_confidence(stack.confidence)
        isr_config = process_ccd_config()
    return VistaIsrTask(config=isr_config).run(image, confidence).outputExposure


def make_visit_images(
    base: VisitImage,
    visit: Visit,
    truth: dict[str, np.ndarray],
    *,
    seed: int,
    with_stars: bool = True,
    extra: dict[int, np.ndarray] | None = None,
) -> dict[int, VisitImage]:
    """Return the two detector images of a visit.

    ``extra`` adds an image (nJy) to a detector's pixels: a transient or a
    trail seen in this visit only.
    """
    images = {}
    bbox = base.bbox
    ny, nx = bbox.shape
    nanojansky_per_unit = (visit.zero_point * u.ABmag).to_value(u.nJy)
    for detector in (1, 2):
        wcs = detector_wcs(visit, detector, nx, ny)
        rng = np.random.default_rng([seed, visit.visit, detector])
        noise = rng.normal(0.0, visit.noise, (ny, nx))
        pixels = np.zeros((ny, nx))
        if with_stars:
            x, y = wcs.wcs_world2pix(truth["ra"], truth["dec"], 0)
            yy, xx = np.mgrid[0:ny, 0:nx]
            for xs, ys, flux in zip(x, y, truth["flux"], strict=True):
                if -20 < xs < nx + 20 and -20 < ys < ny + 20:
                    r2 = (xx - xs) ** 2 + (yy - ys) ** 2
                    profile = np.exp(-0.5 * r2 / visit.sigma**2) / (2 * math.pi * visit.sigma**2)
                    pixels += flux / nanojansky_per_unit * profile
        if extra and detector in extra:
            pixels += extra[detector] / nanojansky_per_unit
        # What calibrateImage's detection would mark: sky is the rest.
        detected = pixels > 0.5 * visit.noise
        pixels += noise
        projection = SkyProjection.from_fits_wcs(wcs, base.sky_projection.pixel_frame, pixel_bounds=bbox)
        mask = base.mask.copy()
        mask.clear()
        mask.set("DETECTED", detected)
        images[detector] = VisitImage(
            Image(pixels.astype(np.float32), bbox=bbox, unit=base.unit, sky_projection=projection),
            mask=mask,
            variance=Image(np.full((ny, nx), visit.noise**2, np.float32), bbox=bbox, unit=base.unit**2),
            psf=GaussianPointSpreadFunction(visit.sigma, bbox, 25),
            obs_info=base.obs_info,
            detector=base.detector,
            photometric_scaling=photometric_scaling_from_zero_point(visit.zero_point, bbox, base.unit),
            band=base.band,
            metadata={},
        )
    return images


def skymap():
    """The test skymap."""
    return make_skymap(skymap_config())
