"""Benchmark of makeDirectWarp + assembleCellCoadd against Debian's SWarp on one patch.

On a synthetic dithered field with an exactly known truth, warped onto one
full patch of Rubin's ``lsst_cells_v1`` skymap (0.2 arcsec pixels, 150-pixel
cells, the 3300 x 3300 outer box of the patch holding the VIDEO XMM-LSS
field centre), in one run:

- data: N visits (5 by default) of one VIRCAM-like 2048 x 2048 detector at
  0.34 arcsec/pixel, dithered by up to 40 arcsec and rotated by up to 0.3
  degrees around the patch centre, each with its own Gaussian PSF (sigma
  1.3-1.9 pixels), zero point and white noise, over the same true stars
  (positions, fluxes in nJy); observation, detector and mask schema come
  from a simulated CASU stack run through VIRCAM's isr
  (``lsst.obs.vista.sim``);
- ours: `MakeDirectWarpTask.run` on each visit, then
  `AssembleCellCoaddTask.run` on the warps, in a fresh subprocess that
  reads each input just before warping it (as deferred handles do; the
  reads are not counted) and holds the warps and their noise realisations
  for the assembly;
- the peer: Debian's ``SWarp`` on the same pixels calibrated to nJy, with
  weight maps of 1/variance, onto exactly the same pixel grid (a ``.head``
  file of the tract WCS shifted to the patch's outer box): LANCZOS3
  resampling, MAP_WEIGHT weights taken as absolute (RESCALE_WEIGHTS N),
  the WEIGHTED mean, no background subtraction, single-threaded (NTHREADS 1:
  ours runs on one core) and otherwise its defaults (its wall time includes
  reading its inputs and writing its resampled temporaries and its coadd;
  ours is in memory);
- the like-for-like peer, for N inputs: SWarp making what ours makes, in
  two runs with the settings above: the image combined with COMBINE_TYPE
  CLIPPED (its rejection of outliers across inputs, as ours clips
  artefacts) and each visit's noise realisation (the very pixels that ours
  warps into ``direct_warp_noise0``: `MakeDirectWarpTask.make_noise_realization`
  of the visit, in nJy, with the image's weight map) combined with the
  WEIGHTED mean (ours' coadded noise realisation); its time is the sum of
  the two runs', its peak RSS the larger.  Ours also makes a mask and a
  PSF per cell, which SWarp does not (its weight map is the counterpart
  of ours' variance plane);
- time: wall clock of ours (warps + assembly) against SWarp's for N inputs
  (target <= 1.5: the plain peer, which makes the image and its weight
  only), the same against the like-for-like peer (no target: the same
  products on both sides but ours' mask and cell PSFs), and of ours for
  4N against N inputs (target <= 4.4); also the CPU time (user + system)
  of ours against both peers for N inputs, which a machine shared with
  other work changes less than the wall clock;
- memory: peak RSS of our subprocess with 4N inputs (20 by default: the
  issue's budget is 4 GiB for a full patch with 20 inputs), with its
  breakdown (process before the first warp, warps held, assembly), and
  SWarp's peak RSS for the same inputs;
- flux: bright isolated stars (predicted S/N > 100 in the aperture) where
  every input reaches, as a ratio to the true flux: the sum in a circular
  aperture of radius 5 times the broadest PSF sigma (holding all the flux
  of a Gaussian but 4e-6) on both coadds, and ours' PSF flux with its own
  cell PSF;
- noise, on empty sky (no true star within the aperture plus 8 PSF sigma)
  where every input reaches: per pixel, the scatter of the pixels over
  each tool's own prediction (ours: the variance plane; SWarp: 1/weight);
  in apertures of 1, 2, 5 and 10 PSF FWHM, the r.m.s. of the aperture sums
  against each tool's prediction (ours: the same apertures on its coadded
  noise realisation, which carries the resampling covariance; SWarp: the
  sum of 1/weight, all it records) and against the white-noise limit of
  large apertures, ``area * (0.2 / 0.34)**2 / sum(1 / sigma_i**2)`` (sigma_i
  the inputs' noise per input pixel, in nJy), which apertures approach
  from below as their edges, where the resampling kernel smooths, weigh
  less.

The table is printed, the rows go to benchmarks/output/bench_coadd.rows.json
for ``make benchmarks``' table and everything to
benchmarks/output/bench_coadd.json.  SWarp comes from Debian: ``apt-get
install swarp`` (its binary is ``SWarp``).  ``--quick`` runs a small case
(1024-pixel detectors, 3 and 12 inputs: at least 3, so that the assembly
looks for artefacts as it does in production).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import astropy.units as u
import astropy.wcs
import numpy as np
from astropy.io import fits
from astropy.stats import mad_std
from lsst.daf.butler import Config
from lsst.images import Box, Image, Interval, Mask, SkyProjection, VisitImage
from lsst.images.cells import CellCoadd
from lsst.images.fits import FitsCompressionOptions
from lsst.images.psfs import GaussianPointSpreadFunction
from lsst.images.serialization import open_archive, read_archive, write_archive
from results import Row, record
from scipy.spatial import cKDTree

from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista._resources import CONFIG_DIR
from lsst.obs.vista.coadd import AssembleCellCoaddConfig, AssembleCellCoaddTask, MakeDirectWarpTask
from lsst.obs.vista.coadd.resampling import resample_image
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.image_formatter import native_mask_layout
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.isr.assembly import photometric_scaling_from_zero_point
from lsst.obs.vista.psf_shape import fwhm_from_moments, kernel_moments
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from lsst.obs.vista.skymap import PatchInfo, SkyMap, TractInfo, make_skymap
from lsst.obs.vista.skymap.register import load_register_config

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "output"
SWARP = "SWarp"
SEED = ROOT / "config" / "butler" / "seed.yaml"
"""The repository seed whose write recipes the warps are written with."""

SKYMAP_NAME = "lsst_cells_v1"
FIELD_CENTRE = (34.5, -5.0)
"""A position (deg) whose patch is the benchmark's: the VIDEO XMM-LSS field."""

DETECTOR_SCALE = 0.34
"""Input pixel scale (arcsec), VIRCAM's."""

MAX_DITHER = 40.0
"""Largest pointing offset (arcsec) per axis from the patch centre."""

SCALING = 4
"""Ratio of the input counts whose times are compared for the scaling."""

TIME_TARGET = "<= 1.5"
SCALING_TARGET = "<= 4.4"
MEMORY_BUDGET_MIB = 4096.0
MEMORY_BUDGET_INPUTS = 20
"""The issue's budget: a full lsst_cells_v1 patch with 20 inputs under 4 GiB."""

STAR_DENSITY = 4.0
"""True stars per arcmin**2 (about 480 on the patch)."""

MAGNITUDES = (16.5, 20.0)
"""Range of the stars' AB magnitudes (uniform)."""

MIN_SNR = 100.0
"""Smallest predicted aperture S/N of the stars whose fluxes are compared."""

APERTURE_SIGMAS = 5.0
"""Radius of the flux aperture in units of the broadest input PSF sigma on
the tract grid: a Gaussian holds all its flux within it but 4e-6."""

STAR_CLEARANCE_SIGMAS = 8.0
"""Sky apertures keep this many of the broadest PSF sigmas from any star,
beyond their radius."""

NOISE_APERTURES = (1, 2, 5, 10)
"""Diameters, in PSF FWHM, of the sky apertures."""

MAX_SKY_APERTURES = 5000
"""Most sky apertures measured per diameter (a random choice of the
non-overlapping ones)."""

PSF_STAMP = 15
"""Half-size (tract pixels) of the stamps of ours' PSF fluxes."""

COADD_BAD_PLANES = ("NO_DATA", "INEXACT_PSF", "CLIPPED", "REJECTED")
"""Ours' mask planes whose pixels are left out of every comparison."""

DETECTOR = 1
"""Detector ID of every visit's single detector."""

SWARP_SETTINGS = {
    "RESAMPLING_TYPE": "LANCZOS3",
    "WEIGHT_TYPE": "MAP_WEIGHT",
    "RESCALE_WEIGHTS": "N",
    "COMBINE_TYPE": "WEIGHTED",
    "SUBTRACT_BACK": "N",
    "SATLEV_DEFAULT": "1e30",
    "NTHREADS": "1",
    "WRITE_XML": "N",
    "VERBOSE_TYPE": "QUIET",
}
"""SWarp settings beside its defaults: weights are 1/variance as given
(not rescaled to the measured noise); the inputs have no saturation
keyword and their bright stars must not be taken as saturated."""

SWARP_LIKE_FOR_LIKE = {
    "image": {"COMBINE_TYPE": "CLIPPED"},
    "noise": {},
}
"""The like-for-like peer's runs, by the inputs they read, and their
settings beside `SWARP_SETTINGS`: CLIPPED rejects outliers across inputs
with its defaults (CLIP_SIGMA 4, CLIP_AMPFRAC 0.3)."""


@dataclasses.dataclass(frozen=True)
class Visit:
    """One visit's truth."""

    visit: int
    offset: tuple[float, float]
    """Pointing offset (arcsec, east and north) from the patch centre."""

    rotation: float
    """Rotation of the detector axes (deg)."""

    sigma: float
    """Gaussian PSF sigma (detector pixels)."""

    zero_point: float
    """AB magnitude of one image unit."""

    noise: float
    """White noise sigma (image units)."""

    @property
    def nanojansky_per_unit(self) -> float:
        """nJy of one image unit (the photometric calibration)."""
        return float((self.zero_point * u.ABmag).to_value(u.nJy))


@dataclasses.dataclass(frozen=True)
class Field:
    """The patch, the visits and the true stars."""

    skymap: SkyMap
    tract: TractInfo
    patch: PatchInfo
    centre: tuple[float, float]
    """Sky position (deg) of the patch's outer-box centre."""

    visits: tuple[Visit, ...]
    stars: dict[str, np.ndarray]
    """``ra``, ``dec`` (deg), ``flux`` (nJy), ``x``, ``y`` (tract pixels)."""

    detector_size: int


def benchmark_patch() -> tuple[SkyMap, TractInfo, PatchInfo]:
    """The skymap, tract and patch of the benchmark."""
    skymap = make_skymap(load_register_config(CONFIG_DIR / "skymap" / f"{SKYMAP_NAME}.py"))
    tract = skymap[skymap.find_tract_id(*FIELD_CENTRE)]
    return skymap, tract, tract.find_patch(*FIELD_CENTRE)


def make_field(n_visits: int, detector_size: int, seed: int = 7) -> Field:
    """The benchmark's patch, ``n_visits`` visits and the true stars."""
    skymap, tract, patch = benchmark_patch()
    outer = patch.outer_bbox
    ra, dec = tract.wcs.wcs_pix2world([[outer.x.center, outer.y.center]], 0)[0]
    rng = np.random.default_rng(seed)
    visits = tuple(
        Visit(
            visit=k + 1,
            offset=(float(rng.uniform(-MAX_DITHER, MAX_DITHER)), float(rng.uniform(-MAX_DITHER, MAX_DITHER))),
            rotation=float(rng.uniform(-0.3, 0.3)),
            sigma=float(rng.uniform(1.3, 1.9)),
            zero_point=float(rng.uniform(26.8, 27.2)),
            noise=float(rng.uniform(3.5, 5.0)),
        )
        for k in range(n_visits)
    )
    area_arcmin2 = outer.x.size * outer.y.size * (0.2 / 60.0) ** 2
    n_stars = int(round(STAR_DENSITY * area_arcmin2))
    x = rng.uniform(outer.x.start, outer.x.stop - 1, n_stars)
    y = rng.uniform(outer.y.start, outer.y.stop - 1, n_stars)
    star_ra, star_dec = tract.wcs.wcs_pix2world(x, y, 0)
    flux = (rng.uniform(*MAGNITUDES, n_stars) * u.ABmag).to_value(u.nJy)
    stars = {"ra": star_ra, "dec": star_dec, "flux": flux, "x": x, "y": y}
    return Field(skymap, tract, patch, (float(ra), float(dec)), visits, stars, detector_size)


def detector_wcs(field: Field, visit: Visit) -> astropy.wcs.WCS:
    """TAN WCS of a visit's detector, centred on its pointing."""
    scale = DETECTOR_SCALE / 3600.0
    theta = math.radians(visit.rotation)
    ra, dec = field.centre
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [
        ra + visit.offset[0] / 3600.0 / math.cos(math.radians(dec)),
        dec + visit.offset[1] / 3600.0,
    ]
    wcs.wcs.crpix = [(field.detector_size + 1) / 2.0] * 2
    wcs.wcs.cd = scale * np.array([[-math.cos(theta), math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    wcs.wcs.set()
    return wcs


def base_image(work: Path) -> VisitImage:
    """A VIRCAM post_isr_image (observation, detector, mask schema)."""
    simulation = SimulationConfig(size=1024, detectors=(1,), seed=11, star_density=0.0, galaxy_density=0.0)
    files = write_pawprint_stack(work, 0, simulation)
    config = VistaIsrConfig()
    Vircam().applyConfigOverrides("isr", config)
    extname = "DET1.CHIP1"
    inputs = (
        read_image_hdu(files.stack, extname, unit=u.adu),
        read_image_hdu(files.confidence, extname, unit=None),
    )
    return VistaIsrTask(config=config).run(*inputs).outputExposure


def visit_image(field: Field, visit: Visit, base: VisitImage, wcs: astropy.wcs.WCS) -> VisitImage:
    """A visit's detector: the true stars drawn with its PSF, plus white noise."""
    size = field.detector_size
    bbox = Box(y=Interval(0, size), x=Interval(0, size))
    model = np.zeros((size, size))
    x, y = wcs.wcs_world2pix(field.stars["ra"], field.stars["dec"], 0)
    half = math.ceil(6 * visit.sigma)
    for xs, ys, flux in zip(x, y, field.stars["flux"], strict=True):
        ix, iy = round(xs), round(ys)
        x0, x1 = max(ix - half, 0), min(ix + half + 1, size)
        y0, y1 = max(iy - half, 0), min(iy + half + 1, size)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - xs) / visit.sigma) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - ys) / visit.sigma) ** 2)
        scale = flux / visit.nanojansky_per_unit / (2 * math.pi * visit.sigma**2)
        model[y0:y1, x0:x1] += scale * np.outer(gy, gx)
    rng = np.random.default_rng([3, visit.visit])
    pixels = model + rng.normal(0.0, visit.noise, model.shape)
    mask = Mask(schema=base.mask.schema, bbox=bbox)
    # What calibrateImage's detection would mark: the warp measures the noise correlation on the rest.
    mask.set("DETECTED", model > 0.5 * visit.noise)
    projection = SkyProjection.from_fits_wcs(wcs, base.sky_projection.pixel_frame, pixel_bounds=bbox)
    return VisitImage(
        Image(pixels.astype(np.float32), bbox=bbox, unit=base.unit, sky_projection=projection),
        mask=mask,
        variance=Image(np.full(model.shape, visit.noise**2, np.float32), bbox=bbox, unit=base.unit**2),
        psf=GaussianPointSpreadFunction(visit.sigma, bbox, 25),
        obs_info=base.obs_info,
        detector=base.detector,
        photometric_scaling=photometric_scaling_from_zero_point(visit.zero_point, bbox, base.unit),
        band=base.band,
        metadata={},
    )


def write_inputs(field: Field, work: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """Write each visit as a VisitImage file (ours) and, for SWarp, as an
    image in nJy with a weight map of 1/variance and as the noise
    realisation that ours warps, in nJy, with the same weight map; return
    the paths of ours and SWarp's by what they hold (``image``, ``noise``)."""
    base = base_image(work / "base")
    (work / "ours").mkdir()
    (work / "swarp").mkdir()
    warp_task = MakeDirectWarpTask()
    ours: list[Path] = []
    swarp: dict[str, list[Path]] = {"image": [], "noise": []}
    for visit in field.visits:
        wcs = detector_wcs(field, visit)
        image = visit_image(field, visit, base, wcs)
        path = work / "ours" / f"visit{visit.visit:03d}.fits"
        image.write(str(path))
        ours.append(path)
        scale = visit.nanojansky_per_unit
        header = wcs.to_header()
        peer = work / "swarp" / f"visit{visit.visit:03d}.fits"
        fits.PrimaryHDU(image.image.array * np.float32(scale), header=header).writeto(peer)
        weight = np.float32(1.0 / scale**2) / image.variance.array
        weight_path = peer.with_suffix(".weight.fits")
        fits.PrimaryHDU(weight, header=header).writeto(weight_path)
        swarp["image"].append(peer)
        # From the file ours reads, so that the draws and their colouring are the warp's own.
        noise = warp_task.make_noise_realization(VisitImage.read(path), visit=visit.visit, detector=DETECTOR)
        noise_path = peer.with_suffix(".noise.fits")
        fits.PrimaryHDU(noise, header=header).writeto(noise_path)
        # SWarp finds an input's weight map by its name: the image's, linked.
        noise_path.with_suffix(".weight.fits").symlink_to(weight_path.name)
        swarp["noise"].append(noise_path)
    return ours, swarp


class _Input:
    """A deferred input, as a butler handle: read when the warp asks for it."""

    def __init__(self, path: Path, reads: list[tuple[float, float]]) -> None:
        self.path = path
        self.reads = reads

    def get(self) -> VisitImage:
        start, cpu_start = time.perf_counter(), time.process_time()
        image = VisitImage.read(self.path)
        self.reads.append((time.perf_counter() - start, time.process_time() - cpu_start))
        return image


def _peak_mib() -> float:
    """Peak RSS of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_mib() -> float:
    """Current RSS of this process (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def run_ours(inputs: list[Path], result: Path) -> None:
    """The worker: warp ``inputs`` onto the patch and coadd them; write the
    coadd, its inputs per pixel and the times and memory to ``result``."""
    skymap, tract, patch = benchmark_patch()
    # Load numba's compiled resampler before the clock starts.
    resample_image(np.ones((8, 8)), np.full((2, 2), 3.5), np.full((2, 2), 3.5))
    compression = {name: seed_compression(name) for name in ("direct_warp", "direct_warp_noise0")}
    memory = {"before_warps": _current_mib()}
    warp_task, assemble_task = MakeDirectWarpTask(), AssembleCellCoaddTask()
    reads: list[tuple[float, float]] = []
    warps, noises = [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for path in inputs:
        visit = int(path.stem.removeprefix("visit"))
        warped = warp_task.run(
            {DETECTOR: _Input(path, reads)},
            skymap=skymap,
            skymap_name=SKYMAP_NAME,
            tract_id=tract.id,
            patch_id=patch.id,
            visit=visit,
        )
        # Written and read back as the butler does (a file per warp, with the
        # seed's write recipe and WarpFormatter's mask layout, read a strip of
        # cells at a time through a handle), so that only what the assembly
        # reads is in memory.
        warp_path, noise_path = result / f"warp{visit:03d}.fits", result / f"noise{visit:03d}.fits"
        with native_mask_layout():
            write_archive(warped.warp, warp_path, compression_options=compression["direct_warp"])
            write_archive(
                warped.noise_warp, noise_path, compression_options=compression["direct_warp_noise0"]
            )
        warps.append(_FileHandle(warp_path))
        noises.append(_FileHandle(noise_path))
        del warped
    read_seconds, read_cpu = (sum(values) for values in zip(*reads, strict=True))
    warp_seconds = time.perf_counter() - start - read_seconds
    warp_cpu = time.process_time() - cpu_start - read_cpu
    files_mib = sum(handle.path.stat().st_size for handle in [*warps, *noises]) / 2**20
    memory["after_warps"] = _current_mib()
    memory["warps_held"] = 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    coadd_result = assemble_task.run(warps, noises)
    assemble_seconds = time.perf_counter() - start
    assemble_cpu = time.process_time() - cpu_start
    memory["peak"] = _peak_mib()
    del warps, noises
    coadd_result.coadd.write(str(result / "coadd.fits"))
    np.save(result / "n_image.npy", coadd_result.n_image.array)
    summary = {
        "inputs": len(inputs),
        "warp_seconds": warp_seconds,
        "assemble_seconds": assemble_seconds,
        "read_seconds": read_seconds,
        "cpu_seconds": warp_cpu + assemble_cpu,
        "warp_files_mib": files_mib,
        "memory_mib": memory,
    }
    (result / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def seed_compression(dataset_type: str) -> dict[str, FitsCompressionOptions | None]:
    """The compression of each plane of ``dataset_type`` in a repository
    created with `SEED` (the write recipe it chooses for that type)."""
    formatters = Config(str(SEED))["datastore", "formatters"]
    entry = formatters[dataset_type]
    recipe = formatters["write_recipes", entry["formatter"]][entry["parameters", "recipe"]]
    return {
        plane: None if options is None else FitsCompressionOptions.model_validate(options)
        for plane, options in recipe.items()
    }


class _FileHandle:
    """A warp file read as a deferred butler handle reads it: whole, one
    component, or a box of pixels (of the whole or of a component)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, *, component: str | None = None, parameters: dict | None = None):
        parameters = parameters or {}
        if component is not None:
            with open_archive(self.path, partial=True) as reader:
                return reader.get_component(component, **parameters)
        return read_archive(self.path, bbox=parameters.get("bbox"))


def run_measured(command: list[str], **kwargs) -> tuple[float, float, float]:
    """Run a subprocess; return its wall time (s), CPU time (user + system,
    s) and peak RSS (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, **kwargs)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def ours_subprocess(inputs: list[Path], work: Path) -> dict:
    """Run the worker on ``inputs`` in a fresh process; return its summary."""
    result = work / f"ours{len(inputs)}"
    result.mkdir()
    command = [sys.executable, __file__, "--worker", str(result), *map(str, inputs)]
    _, _, process_peak = run_measured(command)
    summary = json.loads((result / "summary.json").read_text())
    summary["process_peak_mib"] = process_peak
    summary["seconds"] = summary["warp_seconds"] + summary["assemble_seconds"]
    summary["directory"] = str(result)
    return summary


def swarp_head(field: Field) -> str:
    """SWarp's output header: the tract WCS on the patch's outer box."""
    outer = field.patch.outer_bbox
    header = field.tract.wcs.to_header()
    header["NAXIS"] = 2
    header["NAXIS1"] = outer.x.size
    header["NAXIS2"] = outer.y.size
    header["CRPIX1"] = field.tract.wcs.wcs.crpix[0] - outer.x.start
    header["CRPIX2"] = field.tract.wcs.wcs.crpix[1] - outer.y.start
    return "".join(f"{card.image}\n" for card in header.cards) + "END\n"


def swarp_subprocess(
    field: Field, inputs: list[Path], work: Path, label: str = "", settings: dict[str, str] | None = None
) -> dict:
    """Run SWarp on ``inputs`` with `SWARP_SETTINGS` updated by
    ``settings``, in a directory named by ``label`` and the number of
    inputs; return its time, peak RSS and output paths."""
    directory = work / f"swarp{label}{len(inputs)}"
    directory.mkdir()
    image, weight = directory / "coadd.fits", directory / "coadd.weight.fits"
    image.with_suffix(".head").write_text(swarp_head(field))
    settings = {
        **SWARP_SETTINGS,
        **(settings or {}),
        "IMAGEOUT_NAME": str(image),
        "WEIGHTOUT_NAME": str(weight),
        "RESAMPLE_DIR": str(directory),
        "VMEM_DIR": str(directory),
    }
    options = [item for key, value in settings.items() for item in (f"-{key}", value)]
    # Its messages (the .head file it read) go to a log, shown if it fails.
    log = directory / "swarp.log"
    with log.open("w") as stream:
        try:
            seconds, cpu, peak = run_measured(
                [SWARP, *map(str, inputs), "-c", "/dev/null", *options], cwd=directory, stderr=stream
            )
        except subprocess.CalledProcessError:
            sys.stderr.write(log.read_text())
            raise
    return {
        "inputs": len(inputs),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": peak,
        "image": image,
        "weight": weight,
    }


def disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets (dy, dx) of the pixels whose centres lie within ``radius``."""
    r = math.ceil(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx**2 + dy**2 <= radius**2
    return dy[inside], dx[inside]


def aperture_sums(image: np.ndarray, cy: np.ndarray, cx: np.ndarray, radius: float) -> np.ndarray:
    """Sums of ``image`` in discs at integer array positions (cy, cx)."""
    dy, dx = disc_offsets(radius)
    return image[cy[:, None] + dy[None, :], cx[:, None] + dx[None, :]].sum(axis=1, dtype=np.float64)


def aperture_all(mask: np.ndarray, cy: np.ndarray, cx: np.ndarray, radius: float) -> np.ndarray:
    """Whether every pixel of each disc is set in ``mask``."""
    dy, dx = disc_offsets(radius)
    return mask[cy[:, None] + dy[None, :], cx[:, None] + dx[None, :]].all(axis=1)


class Comparison:
    """Both coadds on the patch's pixels, and what is measured on them."""

    def __init__(self, field: Field, ours: dict, swarp: dict) -> None:
        self.field = field
        self.n_inputs = ours["inputs"]
        self.coadd = CellCoadd.read(Path(ours["directory"]) / "coadd.fits")
        n_image = np.load(Path(ours["directory"]) / "n_image.npy")
        self.swarp_image = fits.getdata(swarp["image"]).astype(np.float64)
        self.swarp_weight = fits.getdata(swarp["weight"]).astype(np.float64)
        self.image = self.coadd.image.array.astype(np.float64)
        self.variance = self.coadd.variance.array.astype(np.float64)
        self.noise = self.coadd.noise_realizations[0].array.astype(np.float64)
        bad = np.any(self.coadd.mask.array & self.coadd.mask.schema.bitmask(*COADD_BAD_PLANES), axis=-1)
        # Pixels every input reaches, in both coadds.
        self.full = (
            (n_image == self.n_inputs)
            & ~bad
            & np.isfinite(self.image)
            & np.isfinite(self.swarp_image)
            & (self.swarp_weight > 0)
        )
        visits = field.visits[: self.n_inputs]
        sigma_tract = max(v.sigma for v in visits) * DETECTOR_SCALE / 0.2
        self.aperture_radius = APERTURE_SIGMAS * sigma_tract
        self.clearance = STAR_CLEARANCE_SIGMAS * sigma_tract
        # Variance of a large aperture's sum per tract pixel of its area (nJy**2).
        pixel_ratio = (0.2 / DETECTOR_SCALE) ** 2
        self.white_limit = pixel_ratio / sum((v.noise * v.nanojansky_per_unit) ** -2 for v in visits)
        outer = field.patch.outer_bbox
        self.star_x = field.stars["x"] - outer.x.start
        self.star_y = field.stars["y"] - outer.y.start
        self.star_tree = cKDTree(np.column_stack([self.star_x, self.star_y]))

    def fluxes(self) -> dict:
        """Aperture fluxes (both) and PSF fluxes (ours) of bright isolated stars over their truth."""
        radius = self.aperture_radius
        flux = self.field.stars["flux"]
        neighbours = self.star_tree.query(np.column_stack([self.star_x, self.star_y]), k=2)[0][:, 1]
        cx, cy = np.rint(self.star_x).astype(int), np.rint(self.star_y).astype(int)
        margin = math.ceil(max(radius, PSF_STAMP)) + 1
        ny, nx = self.image.shape
        inside = (cx >= margin) & (cx < nx - margin) & (cy >= margin) & (cy < ny - margin)
        snr = flux / np.sqrt(math.pi * radius**2 * self.white_limit)
        chosen = inside & (neighbours > 2 * radius + self.clearance) & (snr > MIN_SNR)
        chosen[chosen] = aperture_all(self.full, cy[chosen], cx[chosen], radius)
        index = np.nonzero(chosen)[0]
        ours = aperture_sums(self.image, cy[index], cx[index], radius) / flux[index]
        peer = aperture_sums(self.swarp_image, cy[index], cx[index], radius) / flux[index]
        psf = [self._psf_flux(i) for i in index]
        psf = np.array([value for value in psf if value is not None])
        return {
            "aperture_radius_pixels": radius,
            "ours_aperture": _ratio_summary(ours),
            "swarp_aperture": _ratio_summary(peer),
            "ours_psf": _ratio_summary(psf),
        }

    def _psf_flux(self, index: int) -> float | None:
        """Ours' PSF flux over the truth, with the cell PSF at the star, if
        its stamp lies within one cell (otherwise `None`)."""
        outer = self.field.patch.outer_bbox
        xs, ys = self.field.stars["x"][index], self.field.stars["y"][index]
        ix, iy = round(xs), round(ys)
        cell_box = self.coadd.grid.bbox_of(self.coadd.grid.index_of(x=ix, y=iy))
        if not (
            cell_box.x.start + PSF_STAMP <= ix < cell_box.x.stop - PSF_STAMP
            and cell_box.y.start + PSF_STAMP <= iy < cell_box.y.stop - PSF_STAMP
        ):
            return None
        rows = slice(iy - PSF_STAMP - outer.y.start, iy + PSF_STAMP + 1 - outer.y.start)
        columns = slice(ix - PSF_STAMP - outer.x.start, ix + PSF_STAMP + 1 - outer.x.start)
        kernel = self.coadd.psf.compute_kernel_image(x=xs, y=ys)
        offsets = np.arange(-PSF_STAMP, PSF_STAMP + 1, dtype=float)
        oy, ox = np.meshgrid(offsets + (iy - ys), offsets + (ix - xs), indexing="ij")
        model = resample_image(kernel.array, ox - kernel.bbox.x.start, oy - kernel.bbox.y.start)
        stamp = self.image[rows, columns]
        return float(np.sum(model * stamp) / np.sum(model * model)) / float(self.field.stars["flux"][index])

    def psf_fwhm(self) -> float:
        """Median FWHM (tract pixels) of ours' cell PSFs."""
        cells = list(self.coadd.psf.bounds.cell_indices())
        return float(
            np.median([fwhm_from_moments(*kernel_moments(self.coadd.psf[c].array)[:2]) for c in cells])
        )

    def noise_figures(self, rng: np.random.Generator) -> dict:
        """Sky noise per pixel and in apertures against each tool's prediction."""
        ny, nx = self.image.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        star_distance = self.star_tree.query(np.column_stack([xx.ravel(), yy.ravel()]))[0].reshape(ny, nx)
        sky = self.full & (star_distance > self.clearance)
        pixels = {
            "ours_measured_over_predicted": float(np.std(self.image[sky] / np.sqrt(self.variance[sky]))),
            "swarp_measured_over_predicted": float(
                np.std(self.swarp_image[sky] * np.sqrt(self.swarp_weight[sky]))
            ),
            "swarp_over_ours_measured": float(np.std(self.swarp_image[sky]) / np.std(self.image[sky])),
            "n_pixels": int(np.count_nonzero(sky)),
        }
        fwhm = self.psf_fwhm()
        swarp_variance = np.where(
            self.swarp_weight > 0, 1.0 / np.where(self.swarp_weight > 0, self.swarp_weight, 1.0), 0.0
        )
        apertures = {}
        for diameter in NOISE_APERTURES:
            radius = 0.5 * diameter * fwhm
            step = 2 * math.ceil(radius) + 1
            cy, cx = np.mgrid[step // 2 : ny - step // 2 : step, step // 2 : nx - step // 2 : step]
            cy, cx = cy.ravel(), cx.ravel()
            clear = self.star_tree.query(np.column_stack([cx, cy]))[0] > radius + self.clearance
            cy, cx = cy[clear], cx[clear]
            keep = aperture_all(self.full, cy, cx, radius)
            cy, cx = cy[keep], cx[keep]
            if cy.size > MAX_SKY_APERTURES:
                pick = rng.choice(cy.size, MAX_SKY_APERTURES, replace=False)
                cy, cx = cy[pick], cx[pick]
            ours = _rms(aperture_sums(self.image, cy, cx, radius))
            peer = _rms(aperture_sums(self.swarp_image, cy, cx, radius))
            white = math.sqrt(self.white_limit * disc_offsets(radius)[0].size)
            apertures[str(diameter)] = {
                "radius_pixels": radius,
                "n_apertures": int(cy.size),
                "ours_rms_njy": ours,
                "swarp_rms_njy": peer,
                "ours_over_noise_realisation": ours / _rms(aperture_sums(self.noise, cy, cx, radius)),
                "ours_over_variance_plane": ours
                / math.sqrt(np.mean(aperture_sums(self.variance, cy, cx, radius))),
                "swarp_over_weight_map": peer
                / math.sqrt(np.mean(aperture_sums(swarp_variance, cy, cx, radius))),
                "ours_over_white_limit": ours / white,
                "swarp_over_white_limit": peer / white,
                "swarp_over_ours": peer / ours,
            }
        return {"psf_fwhm_pixels": fwhm, "per_pixel": pixels, "apertures": apertures}


def _rms(values: np.ndarray) -> float:
    """Root mean square (the sky's true mean is 0)."""
    return float(np.sqrt(np.mean(np.square(values))))


def _ratio_summary(ratios: np.ndarray) -> dict:
    """Median, robust scatter and count of flux ratios."""
    if ratios.size == 0:
        return {"n": 0, "median": math.nan, "robust_std": math.nan}
    return {"n": int(ratios.size), "median": float(np.median(ratios)), "robust_std": float(mad_std(ratios))}


def check_swarp() -> None:
    """Exit with instructions if SWarp is not installed."""
    if shutil.which(SWARP) is None:
        sys.exit(
            f"bench_coadd: {SWARP} (Debian package swarp) not found on PATH; on Debian/Ubuntu install "
            "it with\n    sudo apt-get update && sudo apt-get install -y swarp"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--inputs", type=int, default=5, help="inputs of the time comparison (4x for scaling)"
    )
    parser.add_argument(
        "--detector-size", type=int, default=2048, help="side of the input detectors (pixels)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run: 1024-pixel detectors, 3 and 12 inputs"
    )
    parser.add_argument("--keep", metavar="DIR", help="write the inputs and outputs here and keep them")
    parser.add_argument("--worker", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_ours(args.paths, Path(args.worker))
        return
    if args.quick:
        args.inputs, args.detector_size = 3, 1024
    if args.inputs < 1 or args.detector_size < 256:
        parser.error("--inputs must be at least 1 and --detector-size at least 256")
    check_swarp()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUTPUT) as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        n_small, n_large = args.inputs, SCALING * args.inputs
        field = make_field(n_large, args.detector_size)
        start = time.perf_counter()
        ours_inputs, swarp_inputs = write_inputs(field, work)
        outer = field.patch.outer_bbox
        print(
            f"{SKYMAP_NAME} tract {field.tract.id} patch {field.patch.id} ({outer.x.size} x {outer.y.size}); "
            f"{n_large} inputs of {args.detector_size}^2 pixels and {len(field.stars['flux'])} true stars "
            f"written in {time.perf_counter() - start:.0f} s"
        )
        runs = {}
        for n in (n_small, n_large):
            runs[("ours", n)] = ours_subprocess(ours_inputs[:n], work)
            runs[("swarp", n)] = swarp_subprocess(field, swarp_inputs["image"][:n], work)
            print(
                f"  {n:3d} inputs: ours {runs[('ours', n)]['seconds']:7.1f} s, "
                f"SWarp {runs[('swarp', n)]['seconds']:6.1f} s"
            )
        like = like_for_like(field, swarp_inputs, n_small, work)
        layouts = mask_layout_times(Path(runs[("ours", n_small)]["directory"]))
        print(f"  {n_small:3d} inputs: SWarp like-for-like {like['seconds']:6.1f} s")
        comparison = Comparison(field, runs[("ours", n_small)], runs[("swarp", n_small)])
        accuracy = {"flux": comparison.fluxes(), "noise": comparison.noise_figures(np.random.default_rng(5))}
    summary = {
        "skymap": SKYMAP_NAME,
        "tract": field.tract.id,
        "patch": field.patch.id,
        "patch_shape": [outer.y.size, outer.x.size],
        "detector_size": args.detector_size,
        "visits": [dataclasses.asdict(v) for v in field.visits],
        "n_stars": len(field.stars["flux"]),
        "ours": {str(n): _json_run(runs[("ours", n)]) for n in (n_small, n_large)},
        "swarp": {str(n): _json_run(runs[("swarp", n)]) for n in (n_small, n_large)},
        "swarp_like_for_like": {str(n_small): like},
        "mask_layout_cpu_seconds": layouts,
        "accuracy_inputs": n_small,
        "accuracy": accuracy,
    }
    rows = make_rows(summary, n_small, n_large, args.detector_size)
    print_summary(summary, rows)
    record("bench_coadd", rows)
    (OUTPUT / "bench_coadd.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {OUTPUT / 'bench_coadd.json'}")


def mask_layout_times(directory: Path) -> dict[str, float]:
    """CPU time (best of 3) to write one visit's warp and noise warp (the
    first in ``directory``) and read the warp back a strip of cells at a
    time, as the assembly does: with the masks in lsst-images' default FITS
    layout (one 32-bit image built plane by plane) and in the native layout
    that `~lsst.obs.vista.image_formatter.WarpFormatter` writes (the
    private flag it sets is worth what this measures)."""
    warp_path = sorted(directory.glob("warp*.fits"))[0]
    warp, noise = read_archive(warp_path), read_archive(directory / warp_path.name.replace("warp", "noise"))
    outer, rows = warp.bbox, AssembleCellCoaddConfig().cellRowsPerRead * warp.grid.cell_shape[0]
    times = {}
    for layout, context in (("default", contextlib.nullcontext), ("native", native_mask_layout)):
        options = {name: seed_compression(name) for name in ("direct_warp", "direct_warp_noise0")}
        if layout == "default":
            # The same tiles, of the 2-d mask image.
            for recipe in options.values():
                recipe["mask"] = recipe["mask"].model_copy(
                    update={"tile_shape": recipe["mask"].tile_shape[-2:]}
                )
        best = math.inf
        for _ in range(3):
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                start = time.process_time()
                with context():
                    write_archive(
                        warp, Path(scratch) / "warp.fits", compression_options=options["direct_warp"]
                    )
                    write_archive(
                        noise, Path(scratch) / "noise.fits", compression_options=options["direct_warp_noise0"]
                    )
                for y in range(outer.y.start, outer.y.stop, rows):
                    box = Box(y=Interval(y, min(y + rows, outer.y.stop)), x=outer.x)
                    read_archive(Path(scratch) / "warp.fits", bbox=box)
                best = min(best, time.process_time() - start)
        times[layout] = best
    return times


def like_for_like(field: Field, inputs: dict[str, list[Path]], n: int, work: Path) -> dict:
    """Run the like-for-like peer (`SWARP_LIKE_FOR_LIKE`) on the first
    ``n`` visits; return the sum of its runs' times, their larger peak RSS
    and each run's figures."""
    runs = {
        label: _json_run(swarp_subprocess(field, inputs[label][:n], work, f"_{label}_", settings))
        for label, settings in SWARP_LIKE_FOR_LIKE.items()
    }
    return {
        "inputs": n,
        "seconds": sum(run["seconds"] for run in runs.values()),
        "cpu_seconds": sum(run["cpu_seconds"] for run in runs.values()),
        "peak_mib": max(run["peak_mib"] for run in runs.values()),
        "runs": runs,
    }


def _json_run(run: dict) -> dict:
    """A run's summary without its output paths (gone with the scratch directory)."""
    return {key: value for key, value in run.items() if key not in ("image", "weight", "directory")}


def make_rows(summary: dict, n_small: int, n_large: int, detector_size: int) -> list[Row]:
    """The rows of ``make benchmarks``' table."""
    ours, swarp = summary["ours"], summary["swarp"]
    small, large = ours[str(n_small)], ours[str(n_large)]
    like = summary["swarp_like_for_like"][str(n_small)]
    full_case = n_large == MEMORY_BUDGET_INPUTS and detector_size >= 2048
    flux, noise = summary["accuracy"]["flux"], summary["accuracy"]["noise"]["apertures"]
    largest = noise[str(NOISE_APERTURES[-1])]
    return [
        Row(f"warp + coadd of {n_small} inputs, one patch: ours / SWarp", small["seconds"],
            swarp[str(n_small)]["seconds"], "s", TIME_TARGET, small["memory_mib"]["peak"]),
        Row(f"CPU time, warp + coadd of {n_small} inputs: ours / SWarp", small["cpu_seconds"],
            swarp[str(n_small)]["cpu_seconds"], "s"),
        Row(f"like-for-like (clipped image + noise realisation), {n_small} inputs: ours / SWarp",
            small["seconds"], like["seconds"], "s", None, small["memory_mib"]["peak"]),
        Row(f"CPU time, like-for-like, {n_small} inputs: ours / SWarp", small["cpu_seconds"],
            like["cpu_seconds"], "s"),
        Row("one visit's warp + noise warp written, read in strips: native mask layout / default",
            summary["mask_layout_cpu_seconds"]["native"], summary["mask_layout_cpu_seconds"]["default"], "s"),
        Row(f"scaling: ours with {n_large} / {n_small} inputs", large["seconds"], small["seconds"], "s",
            SCALING_TARGET, large["memory_mib"]["peak"]),
        Row(f"scaling: SWarp with {n_large} / {n_small} inputs", swarp[str(n_large)]["seconds"],
            swarp[str(n_small)]["seconds"], "s", None, swarp[str(n_large)]["peak_mib"]),
        Row(f"peak RSS, ours with {n_large} inputs / 4 GiB budget", large["memory_mib"]["peak"],
            MEMORY_BUDGET_MIB, "MiB", "<= 1" if full_case else None, large["memory_mib"]["peak"]),
        Row(f"peak RSS with {n_large} inputs: ours / SWarp", large["memory_mib"]["peak"],
            swarp[str(n_large)]["peak_mib"], "MiB"),
        Row("median bright-star aperture flux / truth: ours / SWarp", flux["ours_aperture"]["median"],
            flux["swarp_aperture"]["median"], ""),
        Row(f"sky noise in {NOISE_APERTURES[-1]}-FWHM apertures: SWarp / ours", largest["swarp_rms_njy"],
            largest["ours_rms_njy"], "nJy"),
    ]  # fmt: skip


def print_summary(summary: dict, rows: list[Row]) -> None:
    """Print the times, memory and accuracy figures."""
    print("\n| comparison | measured | baseline | ratio | target | met |\n|---|---|---|---|---|---|")
    for row in rows:
        met = {True: "yes", False: "NO", None: ""}[row.met]
        print(
            f"| {row.comparison} | {row.value:.4g} {row.unit} | {row.baseline:.4g} {row.unit} "
            f"| {row.ratio:.3f} | {row.target or ''} | {met} |"
        )
    print("\nours, per phase (s) and memory (MiB):")
    for n, run in summary["ours"].items():
        memory = run["memory_mib"]
        print(
            f"  {n:>3s} inputs: warps {run['warp_seconds']:.1f} "
            f"({run['warp_seconds'] / int(n):.1f} per input), assembly {run['assemble_seconds']:.1f}; "
            f"warp files {run['warp_files_mib'] / int(n):.0f} MiB per input; "
            f"RSS before the warps {memory['before_warps']:.0f}, "
            f"after {memory['after_warps']:.0f} (warp planes held {memory['warps_held']:.0f}), "
            f"peak {memory['peak']:.0f} (whole process {run['process_peak_mib']:.0f})"
        )
    for n, run in summary["swarp"].items():
        print(f"  SWarp {n:>3s} inputs: {run['seconds']:.1f} s, peak RSS {run['peak_mib']:.0f} MiB")
    for n, like in summary["swarp_like_for_like"].items():
        parts = ", ".join(f"{label} {run['seconds']:.1f} s" for label, run in like["runs"].items())
        print(
            f"  SWarp like-for-like {n:>3s} inputs: {like['seconds']:.1f} s ({parts}), "
            f"peak RSS {like['peak_mib']:.0f} MiB"
        )
    accuracy = summary["accuracy"]
    flux = accuracy["flux"]
    print(
        f"\nbright isolated stars, {summary['accuracy_inputs']} inputs (flux / truth; aperture radius "
        f"{flux['aperture_radius_pixels']:.1f} px):"
    )
    for key, label in (
        ("ours_aperture", "ours, aperture"),
        ("ours_psf", "ours, PSF"),
        ("swarp_aperture", "SWarp, aperture"),
    ):
        values = flux[key]
        print(
            f"  {label:16s} median {values['median']:.4f}, robust std {values['robust_std']:.4f}, "
            f"n {values['n']}"
        )
    noise = accuracy["noise"]
    pixels = noise["per_pixel"]
    print(
        f"\nsky noise (PSF FWHM {noise['psf_fwhm_pixels']:.2f} px); per pixel, measured / predicted: "
        f"ours {pixels['ours_measured_over_predicted']:.3f} (variance plane), "
        f"SWarp {pixels['swarp_measured_over_predicted']:.3f} (1/weight); SWarp / ours "
        f"{pixels['swarp_over_ours_measured']:.3f}"
    )
    print(
        "  apertures (FWHM): n, ours r.m.s. over its noise realisation / its variance plane / white limit;"
        " SWarp r.m.s. over its weight map / white limit; SWarp / ours"
    )
    for diameter, values in noise["apertures"].items():
        print(
            f"  {diameter:>3s}: {values['n_apertures']:5d}, "
            f"ours {values['ours_over_noise_realisation']:.3f} / {values['ours_over_variance_plane']:.3f} / "
            f"{values['ours_over_white_limit']:.3f}; SWarp "
            f"{values['swarp_over_weight_map']:.3f} / {values['swarp_over_white_limit']:.3f}; "
            f"{values['swarp_over_ours']:.3f}"
        )


if __name__ == "__main__":
    main()
