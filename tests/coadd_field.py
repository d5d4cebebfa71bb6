"""A synthetic dithered field for the coadd tests: visits of two VIRCAM-like
detectors side by side (or two DECam CCDs, `decam_layout`), with exactly
known stars, Gaussian PSFs, white noise and photometric scalings, on a small
cells skymap.

The detectors are ``preliminary_visit_image``-like `lsst.images.VisitImage`
objects whose observation, detector and mask schema come from a simulated
CASU stack run through VIRCAM's (or WFCAM's) isr, or from a CP instcal trio
with a real DECam header run through DECam's; their pixels, WCS, PSF and
scaling are replaced by the truth below.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import astropy.units as u
import astropy.wcs
import numpy as np
from astropy.io import fits
from lsst.images import Image, SkyProjection, VisitImage
from lsst.images.psfs import GaussianPointSpreadFunction

from isr_support import process_ccd_config, read_confidence, read_stack, wfcam_process_ccd_config
from lsst.obs.vista import DecamCp
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import DecamCpIsrConfig, DecamCpIsrTask, VistaIsrTask
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

DECAM_CP = Path(__file__).parent / "data" / "decam_cp" / "testcase6"
"""Real CP instcal trios of DECam CCD S4 in g, r and z, whose headers the
DECam bases carry."""

DECAM_DETECTORS = (28, 35)
"""DECam's S4 and N4 (CCDNUM): neighbours along the focal plane's x, which
is the CCDs' pixel x."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a visit's two detectors lie on the sky."""

    detectors: tuple[int, int]
    """Detector IDs, the first at lower pixel x than the second."""

    pixel_scale: float
    """Arcsec per pixel."""

    axes: tuple[tuple[float, float], tuple[float, float]]
    """The CD matrix of an unrotated visit in units of the pixel scale,
    ((dRA/dx, dRA/dy), (dDec/dx, dDec/dy))."""

    gap: int
    """Pixels between the two detectors along pixel x."""


LAYOUT = Layout(detectors=(1, 2), pixel_scale=PIXEL_SCALE, axes=((-1.0, 0.0), (0.0, 1.0)), gap=GAP)
"""VIRCAM-like detectors 1 and 2 (WFCAM's bases use it too): pixel x to the
west, y to the north."""


def decam_layout(width: int) -> Layout:
    """DECam's CCDs S4 and N4 at DECam's pixel scale, oriented as the CP's
    WCS has them (pixel x to the south, y to the east: a mirror image of the
    sky, unlike `LAYOUT`), ``width`` pixels wide (a real CCD is 2046) and
    the gap between them the real one scaled by the same factor."""
    camera = DecamCp.camera()
    first, second = (camera.detectors[ccd] for ccd in DECAM_DETECTORS)
    real_width = camera.detector_shape[1]
    real_gap = (second.focal_plane_x - first.focal_plane_x) / camera.pixel_size - real_width
    return Layout(
        detectors=DECAM_DETECTORS,
        pixel_scale=camera.plate_scale,
        axes=((0.0, 1.0), (-1.0, 0.0)),
        gap=round(real_gap * width / real_width),
    )


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


def detector_wcs(visit: Visit, detector: int, nx: int, ny: int, layout: Layout = LAYOUT) -> astropy.wcs.WCS:
    """TAN WCS of an ``nx`` x ``ny`` detector of ``layout``."""
    scale = layout.pixel_scale / 3600.0
    theta = math.radians(visit.rotation)
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [
        CENTRE[0] + visit.offset[0] / 3600.0 / math.cos(math.radians(CENTRE[1])),
        CENTRE[1] + visit.offset[1] / 3600.0,
    ]
    # The pointing is midway between the detectors.
    shift = (nx + layout.gap) / 2.0 * (1 if detector == layout.detectors[0] else -1)
    wcs.wcs.crpix = [(nx - 1) / 2.0 + 1.0 + shift, (ny - 1) / 2.0 + 1.0]
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    wcs.wcs.cd = scale * (np.array(layout.axes) @ rotation)
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
    """A post_isr_image of ``instrument`` in ``filter_name``: the
    observation, detector, band and mask schema of the visit images.

    VIRCAM and WFCAM: a simulated CASU stack, ``size`` pixels square,
    through the instrument's isr.  DECam: a CP instcal trio of CCD S4,
    ``size`` pixels wide and twice as tall as DECam's CCDs are, with the
    headers of the real trio of `DECAM_CP` in band ``filter_name`` (g, r or
    z), through DECam's isr (`DecamCpIsrTask` with DECam's overrides).
    """
    if instrument == "DECam":
        return _decam_base(directory, size, filter_name)
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


def _decam_base(directory: Path, width: int, band: str) -> VisitImage:
    """`make_base` for DECam: the real trio's headers over a flat sky of the
    real image's median level with the real weight map's median noise, no
    data-quality codes, written as a CP trio and read back as ingest reads
    it."""
    (real_image,) = DECAM_CP.glob(f"*_ooi_{band}_*.S4.fits")
    shape = (2 * width, width)
    weight = float(
        np.median(fits.getdata(real_image.with_name(real_image.name.replace("_ooi_", "_oow_")), 1))
    )
    sky = float(np.median(fits.getdata(real_image, 1)))
    pixels = {
        "ooi": np.random.default_rng(11).normal(sky, weight**-0.5, shape).astype(np.float32),
        "oow": np.full(shape, weight, np.float32),
        "ood": np.zeros(shape, np.int32),
    }
    paths = {}
    for role, data in pixels.items():
        real = real_image.with_name(real_image.name.replace("_ooi_", f"_{role}_"))
        with fits.open(real) as hdus:
            trio = fits.HDUList([fits.PrimaryHDU(header=hdus[0].header), fits.ImageHDU(data, hdus[1].header)])
        paths[role] = directory / real.name
        trio.writeto(paths[role])
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    return (
        DecamCpIsrTask(config=config)
        .run(
            read_image_hdu(paths["ooi"], 1, unit=u.adu),
            read_image_hdu(paths["oow"], 1, unit=u.adu**-2),
            read_image_hdu(paths["ood"], 1, unit=None),
        )
        .outputExposure
    )


STAMP_SIGMAS = 8.0
"""Half-width (in sigmas) of the box `add_gaussian` draws a Gaussian in:
beyond it the profile is below 1e-14 of its peak."""


def add_gaussian(pixels: np.ndarray, x: float, y: float, sigma: float, total: float) -> None:
    """Add a round Gaussian of integral ``total`` and width ``sigma``
    (pixels) centred at array position (``x``, ``y``) to ``pixels``."""
    half = math.ceil(STAMP_SIGMAS * sigma)
    x0, x1 = max(0, math.floor(x) - half), min(pixels.shape[1], math.floor(x) + half + 2)
    y0, y1 = max(0, math.floor(y) - half), min(pixels.shape[0], math.floor(y) + half + 2)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    r2 = (xx - x) ** 2 + (yy - y) ** 2
    pixels[y0:y1, x0:x1] += total * np.exp(-0.5 * r2 / sigma**2) / (2 * math.pi * sigma**2)


def make_visit_images(
    base: VisitImage,
    visit: Visit,
    truth: dict[str, np.ndarray],
    *,
    seed: int,
    with_stars: bool = True,
    extra: dict[int, np.ndarray] | None = None,
    layout: Layout = LAYOUT,
) -> dict[int, VisitImage]:
    """Return the two detector images of a visit, by detector ID of
    ``layout``.

    ``extra`` adds an image (nJy) to a detector's pixels: a transient or a
    trail seen in this visit only.
    """
    images = {}
    bbox = base.bbox
    ny, nx = bbox.shape
    nanojansky_per_unit = (visit.zero_point * u.ABmag).to_value(u.nJy)
    for detector in layout.detectors:
        wcs = detector_wcs(visit, detector, nx, ny, layout)
        rng = np.random.default_rng([seed, visit.visit, detector])
        noise = rng.normal(0.0, visit.noise, (ny, nx))
        pixels = np.zeros((ny, nx))
        if with_stars:
            x, y = wcs.wcs_world2pix(truth["ra"], truth["dec"], 0)
            for xs, ys, flux in zip(x, y, truth["flux"], strict=True):
                add_gaussian(pixels, xs, ys, visit.sigma, flux / nanojansky_per_unit)
        if extra and detector in extra:
            pixels += extra[detector] / nanojansky_per_unit
        # What calibrateImage's detection would mark: sky is the rest.
        detected = pixels > 0.5 * visit.noise
        pixels += noise
        # The WCS is of array indices; the images' pixel grid starts at the base's first pixel.
        projection = SkyProjection.from_fits_wcs(
            wcs, base.sky_projection.pixel_frame, pixel_bounds=bbox, x0=bbox.x.start, y0=bbox.y.start
        )
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
