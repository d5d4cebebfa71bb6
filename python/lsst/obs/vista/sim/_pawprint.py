"""Synthetic CASU pawprint stacks with their exact truth."""

from __future__ import annotations

__all__ = ("SimulatedStack", "write_pawprint_stack")

import contextlib
import dataclasses
import math
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..psf_shape import FWHM_PER_SIGMA
from ._catalog import TrueSources, catalog_hdu, stack_catalog_header
from ._config import SimulationConfig
from ._files import FitsFile, scaled_image_hdu
from ._geometry import header_wcs
from ._headers import SIMULATE_CARD, confidence_header, extension_header, primary_header
from ._plan import StackPlan
from ._psf import exposure_psf_variance
from ._random import Stream, generator
from ._render import Scene, render
from ._sky import SkyCatalog, sky_catalog
from ._sources import source_truth_hdu, zero_points
from ._stack import ExposureMaker, StackAccumulator, StackPixels, input_confidence
from ._truth import VARIANCE_COMMENT, detector_truth_hdus, robust_sky_noise, truth_path

_MARGIN = 100
"""Pixels beyond the stack's edges within which sources are still drawn,
for the wings that reach into it."""


@dataclasses.dataclass(frozen=True)
class SimulatedStack:
    """The files of one synthetic pawprint stack."""

    index: int
    """Stack index it was made from."""

    stem: str
    """File name stem, e.g. ``v20120924_00100_st``."""

    stack: Path
    """The image, ``<stem>.fit``."""

    confidence: Path
    """Its confidence map, ``<stem>_conf.fit``."""

    catalog: Path
    """The catalogue of true sources, ``<stem>_cat.fits``."""

    truth: Path
    """The truth sidecar, ``truth/<stem>_truth.fits``."""


def simulate_detector(
    plan: StackPlan, detector_id: int, wcs: WCS, sky: SkyCatalog, flux: np.ndarray
) -> StackPixels:
    """Make one detector of a stack: its exposures, stack and truth.

    Parameters
    ----------
    plan : `StackPlan`
        The stack.
    detector_id : `int`
        ``ESO DET CHIP NO``.
    wcs : `astropy.wcs.WCS`
        WCS of the detector's stack.
    sky : `SkyCatalog`
        The sources.
    flux : `numpy.ndarray`
        Their fluxes (ADU per DIT).

    Returns
    -------
    pixels : `StackPixels`
        The stack and its truth.
    """
    config = plan.config
    ny, nx = plan.shape
    x, y = wcs.world_to_pixel_values(sky.ra, sky.dec)
    near = (x > -_MARGIN) & (x < nx + _MARGIN) & (y > -_MARGIN) & (y < ny + _MARGIN)
    x, y = x[near], y[near]
    shapes = (flux[near], sky.radius[near], sky.axis_ratio[near], sky.angle[near])
    confidence = input_confidence(detector_id, config)
    maker = ExposureMaker(plan.noise[detector_id], confidence)
    accumulator = StackAccumulator(plan.shape, confidence)
    for number, origin in enumerate(plan.jitter.offsets):
        # Each exposure sees every source with the PSF where it falls on
        # the detector.
        psf_variance = exposure_psf_variance(config, x - origin[0], y - origin[1])
        scene = Scene.from_sources(x, y, *shapes, psf_variance)
        level = render(scene, origin, config.size).astype(np.float32)
        level += np.float32(plan.sky[detector_id])
        rng = generator(config.seed, Stream.NOISE, plan.visit.index, detector_id, number)
        accumulator.add(origin, maker.expose(level, rng))
    return accumulator.finish(config.bscale)


def _truth_primary(plan: StackPlan) -> fits.Header:
    config = plan.config
    header = fits.Header()
    header.append(SIMULATE_CARD)
    header["PRODUCT"] = ("pawprint_stack", "kind of CASU product")
    header["STEM"] = (plan.visit.stem, "the product is <STEM>.fit")
    header["DATE-OBS"] = (plan.visit.start.utc.isot, "DATE-OBS of the product")
    header["STACKIDX"] = (plan.visit.index, "stack index of lsst.obs.vista.sim")
    header["SEED"] = (config.seed, "random seed of the simulation")
    header["SIZE"] = (config.size, "detector side (pixels)")
    header["BAND"] = (config.camera.filters_by_header_name[config.filter_name].band, "band of the filter")
    header["NICOMB"] = (config.n_exposures, "exposures in the stack")
    header["DIT"] = (config.dit, "[s] pixel values are per DIT (EXPTIME)")
    header["NDIT"] = (config.ndit, "DITs averaged per exposure")
    header["MAGZPT"] = (config.magzpt, "mag = MAGZPT - 2.5 log10(flux/EXPTIME)")
    zp_vega, zp_ab = zero_points(config)
    header["ZPVEGA"] = (zp_vega, "[mag] Vega mag of 1 ADU/DIT: MAGZPT+2.5log DIT")
    if zp_ab is not None:
        header["ZPAB"] = (zp_ab, "[mag] AB mag of 1 ADU/DIT: ZPVEGA+VEGA2AB")
    header["PSFFWHM"] = (config.seeing, "[pixel] FWHM of the exposure PSF at the centre")
    header["PSFVAR"] = (config.psf_variation, "exposure PSF FWHM change, centre to corner")
    header["SEEING"] = (plan.seeing, "[pixel] stack PSF FWHM, detector mean")
    header["PSFSIGMA"] = (config.seeing / FWHM_PER_SIGMA, "[pixel] sigma of the exposure PSF at centre")
    header["IMBSCALE"] = (config.bscale, "BSCALE (quantisation step) of the image")
    header["QUANTVAR"] = (config.bscale**2 / 12.0, "[adu2] BSCALE**2/12")
    for exposure, (x, y) in enumerate(plan.jitter.offsets, start=1):
        header[f"JITX{exposure:02d}"] = (float(x), f"[pixel] stack x of exposure {exposure} pixel (0,0)")
        header[f"JITY{exposure:02d}"] = (float(y), f"[pixel] stack y of exposure {exposure} pixel (0,0)")
    for line in VARIANCE_COMMENT:
        header.add_comment(line)
    return header


def write_pawprint_stack(outdir: str | Path, index: int, config: SimulationConfig) -> SimulatedStack:
    """Write one synthetic pawprint stack, its confidence map, catalogue and
    truth.

    Parameters
    ----------
    outdir : `str` or `pathlib.Path`
        Directory of the products (created if needed); the truth goes to
        its ``truth/`` sub-directory.
    index : `int`
        Stack index (0-based): each index is its own observation; six
        consecutive indices from a multiple of 6 form one tile.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    stack : `SimulatedStack`
        The files written.
    """
    outdir = Path(outdir)
    plan = StackPlan.make(index, config)
    stem = plan.visit.stem
    result = SimulatedStack(
        index=index,
        stem=stem,
        stack=outdir / f"{stem}.fit",
        confidence=outdir / f"{stem}_conf.fit",
        catalog=outdir / f"{stem}_cat.fits",
        truth=truth_path(outdir, stem),
    )
    primary = primary_header(plan)
    sky = sky_catalog(config)
    flux = sky.flux(config, plan.midpoint_mjd)
    mean_origin = plan.jitter.offsets.mean(axis=0)
    with contextlib.ExitStack() as files:
        image_file = files.enter_context(FitsFile(result.stack, primary))
        confidence_file = files.enter_context(FitsFile(result.confidence, primary))
        catalog_file = files.enter_context(FitsFile(result.catalog, primary))
        truth_file = files.enter_context(FitsFile(result.truth, _truth_primary(plan)))
        for detector_id in config.detectors:
            header = extension_header(plan, detector_id, plan.nominal_sky_noise(detector_id))
            wcs = header_wcs(header)
            pixels = simulate_detector(plan, detector_id, wcs, sky, flux)
            sky_noise = robust_sky_noise(
                pixels.counts,
                config.bscale,
                pixels.model,
                pixels.variance,
                pixels.confidence,
                plan.sky[detector_id],
            )
            header["SKYNOISE"] = round(sky_noise, 2)
            image_file.append(scaled_image_hdu(pixels.counts, header))
            confidence_file.append(fits.ImageHDU(data=pixels.confidence, header=confidence_header(header)))
            found, confidence = TrueSources.select(sky, flux, wcs, pixels.confidence)
            # The catalogue's profiles are those of an exposure at the mean
            # jitter position.
            psf_variance = exposure_psf_variance(config, found.x - mean_origin[0], found.y - mean_origin[1])
            catalog_header = stack_catalog_header(
                header, plan.noise[detector_id].saturation_level, math.floor(plan.visit.start.utc.mjd)
            )
            catalog_file.append(
                catalog_hdu(
                    found,
                    confidence,
                    wcs,
                    psf_variance,
                    plan.sky[detector_id],
                    sky_noise,
                    catalog_header,
                    header,
                )
            )
            for hdu in detector_truth_hdus(plan, detector_id, pixels, header):
                truth_file.append(hdu)
            truth_file.append(source_truth_hdu(plan, detector_id, wcs, sky, flux, pixels))
    return result
