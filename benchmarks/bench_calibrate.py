"""Benchmark of CalibrateImageTask against SExtractor + PSFEx on the same pixels.

On full-size (2048 x 2048) synthetic VIRCAM detectors with a known truth (a
PSF that varies across the detector, the true position and flux of every
star), in one run:

- data: one synthetic pawprint stack (``lsst.obs.vista.sim``, seed 3), each
  detector assembled in process by `VistaIsrTask` into its
  ``post_isr_image``;
- ours: `CalibrateImageTask.run` on it, with config/vircam/calibrateImage.py;
- the peer: Debian's ``source-extractor`` and ``psfex`` on the same pixels
  (the image before background subtraction, SExtractor estimates its own,
  and a weight map of 1/variance, 0 where NO_DATA): pass 1 writes the
  vignettes PSFEx models the PSF from (normalised in our aperture-correction
  radius), PSFEx with its defaults (pixel basis, 25 samples at its automatic
  sampling, degree 2 in x, y), pass 2 measures FLUX_PSF with that model and
  FLUX_APER in our apertures.  Both single-threaded (NTHREADS 1, the
  packages' default).  Detection matches ours: the same Gaussian kernel
  (from the header PSF), DETECT_THRESH at the same significance of the
  filtered image (SExtractor thresholds it in units of the unfiltered pixel
  noise, sep-developers/sep#53), the same minimum area and deblending; the
  variance is taken as absolute (RESCALE_WEIGHTS N) and already holds the
  sources' Poisson term (GAIN 0);
- timing: wall clock of ``run`` against that of the three subprocesses
  (writing their input FITS files is not counted), median over rounds of
  the ratio (target <= 1.5), the two taking turns within each round;
- accuracy, on true stars (unsaturated, on data, no other true source
  within 5 pixels) at true S/N 10-200, matched by position within 1 pixel:
  median and robust std (1.4826 MAD) of (measured - true flux) / error for
  each tool (the issue asks ours to be at least as close to 0 and 1 as
  SExtractor's); completeness of true stars at S/N >= 10 and detections
  far from any true source; PSF FWHM of each model at the centre and
  corners of the fully covered area against the truth.  The true S/N is
  that of a PSF fit with the true PSF and the exact variance of the truth
  sidecar; the truth's neighbour covariances (the stack's resampling) give
  the robust std that errors from the variance plane alone should show.

The table is printed and written to benchmarks/output/bench_calibrate.json.
SExtractor and PSFEx come from Debian: ``apt-get install source-extractor
psfex``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

import astropy.units as u
import galsim
import galsim.des
import numpy as np
from astropy.io import fits
from astropy.stats import mad_std
from astropy.table import Table
from lsst.images import VisitImage
from scipy.spatial import cKDTree

from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista._resources import CONFIG_DIR
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.psf_shape import FWHM_PER_SIGMA, psf_fwhm, psf_moments
from lsst.obs.vista.sim import SimulationConfig, read_source_truth, true_psf_fwhm, write_pawprint_stack
from results import Row, record

ROOT = Path(__file__).resolve().parent.parent
SEXTRACTOR_DIR = Path(__file__).resolve().parent / "sextractor"
TOOLS = ("source-extractor", "psfex")

MATCH_RADIUS = 1.0
"""Largest distance (pixels) between a true star and its measurement."""

ISOLATION_RADIUS = 5.0
"""True stars with another true source this close (pixels) are left out."""

SPURIOUS_RADIUS = 3.0
"""Detections with no true source this close (pixels) count as spurious."""

SNR_RANGE = (10.0, 200.0)
"""True S/N range of the stars whose normalised flux residuals are compared."""

PSF_STAMP = 25
"""Side (pixels) of the stamps the true S/N is computed in and of the kernel
images the PSF FWHMs are measured on."""


SEXTRACTOR_SETTINGS = {
    "WEIGHT_TYPE": "MAP_WEIGHT",
    "RESCALE_WEIGHTS": "N",
    "WEIGHT_GAIN": "N",
    "GAIN": "0",
    "INTERP_TYPE": "NONE",
    "SATUR_LEVEL": "1e15",
    "FILTER": "Y",
    "MEMORY_PIXSTACK": "4200000",
    "NTHREADS": "1",
    "VERBOSE_TYPE": "QUIET",
}
"""SExtractor settings of both passes beside those taken from our config:
weights are 1/variance as given, which already holds the sources' Poisson
term (no GAIN term on top); saturation is in our mask, not the pixels."""

PSFEX_SETTINGS = {
    "SAMPLE_FWHMRANGE": "1.0,10.0",
    "CHECKPLOT_TYPE": "NONE",
    "CHECKIMAGE_TYPE": "NONE",
    "WRITE_XML": "N",
    "NTHREADS": "1",
    "VERBOSE_TYPE": "QUIET",
}
"""PSFEx settings: its defaults, with stars from 1 pixel FWHM (the default
lower limit, 2, is close to the simulated seeing) and no diagnostic files."""


def options(settings: dict[str, str]) -> list[str]:
    """Command-line arguments of SExtractor or PSFEx with no configuration
    file (``-c /dev/null``: every other setting keeps its built-in default)."""
    return ["-c", "/dev/null", *(item for key, value in settings.items() for item in (f"-{key}", value))]


def check_tools() -> None:
    """Exit with instructions if SExtractor or PSFEx is not installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"bench_calibrate: {', '.join(missing)} not found on PATH; on Debian/Ubuntu install them with\n"
            "    sudo apt-get update && sudo apt-get install -y source-extractor psfex"
        )


def post_isr_image(stack: Path, confidence: Path, detector: int) -> VisitImage:
    """Assemble one detector with the ingest formatter's reader and VistaIsrTask."""
    config = VistaIsrConfig()
    Vircam().applyConfigOverrides("isr", config)
    extname = f"DET1.CHIP{detector}"
    inputs = read_image_hdu(stack, extname, unit=u.adu), read_image_hdu(confidence, extname, unit=None)
    return VistaIsrTask(config=config).run(*inputs).outputExposure


def calibrate_task() -> CalibrateImageTask:
    """The task as the VIRCAM pipelines configure it."""
    config = CalibrateImageConfig()
    config.load(str(CONFIG_DIR / "vircam" / "calibrateImage.py"))
    return CalibrateImageTask(config=config)


class SExtractorPsfex:
    """SExtractor pass 1, PSFEx, SExtractor pass 2 on one exposure's pixels.

    Parameters
    ----------
    exposure : `lsst.images.VisitImage`
        ``post_isr_image``.
    work : `pathlib.Path`
        Directory for the input FITS files and the outputs.
    task : `CalibrateImageTask`
        Ours, whose detection and aperture settings the peer's follow.
    """

    def __init__(self, exposure: VisitImage, work: Path, task: CalibrateImageTask) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.image = work / "image.fits"
        self.weight = work / "weight.fits"
        self.psf_catalog = work / "psfex_input.cat"
        self.psf_model = work / "psfex_input.psf"
        self.catalog = work / "measurement.fits"
        no_data = exposure.mask.get("NO_DATA")
        variance = np.asarray(exposure.variance.array, dtype=np.float64)
        good = ~no_data & (variance > 0) & np.isfinite(variance)
        pixels = np.where(good, exposure.image.array, 0.0).astype(np.float32)
        weight = np.zeros(variance.shape, dtype=np.float32)
        weight[good] = 1.0 / variance[good]
        fits.PrimaryHDU(pixels).writeto(self.image, overwrite=True)
        fits.PrimaryHDU(weight).writeto(self.weight, overwrite=True)

        # The detection kernel of ours: a Gaussian of the header PSF's sigma, half-side
        # kernelHalfWidth sigma; SExtractor normalises it to unit sum.
        bbox = exposure.bbox
        ixx, iyy, _ = psf_moments(exposure.psf, x=bbox.x.center, y=bbox.y.center)
        sigma = math.sqrt(0.5 * (ixx + iyy))
        detection = task.config.detection
        half = max(1, math.ceil(detection.kernelHalfWidth * sigma))
        offsets = np.arange(-half, half + 1)
        kernel = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / sigma**2)
        kernel /= kernel.sum()
        self.kernel = work / "gauss.conv"
        lines = [f"CONV NORM\n# Gaussian, sigma {sigma:.4f} pixels (header PSF), as ours detects with\n"]
        lines += [" ".join(f"{value:.6f}" for value in row) + "\n" for row in kernel]
        self.kernel.write_text("".join(lines))
        # SExtractor thresholds the filtered image in units of the unfiltered pixel noise; the
        # filtered noise is sqrt(sum k**2) of it, so this is ours' threshold in sigma of the
        # filtered image.
        self.detect_thresh = detection.threshold * math.sqrt(float(np.sum(kernel**2)))
        self.detection = detection
        radii = task.config.measurement.apertureRadii
        self.apertures = ",".join(f"{2 * r:g}" for r in radii)
        self.psf_aperture = f"{2 * task.config.apertureCorrection.referenceRadius:g}"

    def _sextractor(self, parameters: str, catalog: Path, catalog_type: str, apertures: str, **extra: str):
        settings = {
            **SEXTRACTOR_SETTINGS,
            "PARAMETERS_NAME": str(SEXTRACTOR_DIR / parameters),
            "CATALOG_NAME": str(catalog),
            "CATALOG_TYPE": catalog_type,
            "WEIGHT_IMAGE": str(self.weight),
            "FILTER_NAME": str(self.kernel),
            "DETECT_THRESH": f"{self.detect_thresh:.6f}",
            "ANALYSIS_THRESH": f"{self.detect_thresh:.6f}",
            "DETECT_MINAREA": str(self.detection.minArea),
            "DEBLEND_NTHRESH": str(self.detection.deblendThresholds),
            "DEBLEND_MINCONT": str(self.detection.deblendContrast),
            "PHOT_APERTURES": apertures,
            **extra,
        }
        subprocess.run(["source-extractor", str(self.image), *options(settings)], check=True, cwd=self.work)

    def run(self) -> Table:
        """Run the three steps; return pass 2's catalogue.

        The wall time of each step is kept in ``step_times``.
        """
        self.step_times: dict[str, float] = {}
        start = time.perf_counter()
        self._sextractor("psfex_input.param", self.psf_catalog, "FITS_LDAC", self.psf_aperture)
        self.step_times["sextractor_pass1"] = time.perf_counter() - start
        start = time.perf_counter()
        psfex = options({**PSFEX_SETTINGS, "PSF_DIR": str(self.work)})
        subprocess.run(["psfex", str(self.psf_catalog), *psfex], check=True, cwd=self.work)
        self.step_times["psfex"] = time.perf_counter() - start
        start = time.perf_counter()
        self._sextractor(
            "measurement.param", self.catalog, "FITS_1.0", self.apertures, PSF_NAME=str(self.psf_model)
        )
        self.step_times["sextractor_pass2"] = time.perf_counter() - start
        return Table.read(self.catalog, hdu=1)

    def psf_fwhm(self, x: float, y: float) -> float:
        """Second-moment FWHM of the PSFEx model at parent position (x, y),
        measured as ours is (`lsst.obs.vista.psf_shape.psf_moments`)."""
        model = galsim.des.DES_PSFEx(str(self.psf_model))
        # PSFEx positions are 1-based; its model already includes the pixel response.
        profile = model.getPSF(galsim.PositionD(x + 1.0, y + 1.0))
        kernel = profile.drawImage(nx=PSF_STAMP, ny=PSF_STAMP, scale=1.0, method="no_pixel").array
        adapter = types.SimpleNamespace(compute_kernel_image=lambda x, y: types.SimpleNamespace(array=kernel))
        ixx, iyy, _ = psf_moments(adapter, x=x, y=y)
        return float(FWHM_PER_SIGMA * math.sqrt(0.5 * (ixx + iyy)))


def true_stars(truth_file: Path, detector: int, shape: tuple[int, int]) -> tuple[Table, Table]:
    """The true sources of one detector, and its stars with their true S/N.

    For each star: ``snr``, the S/N of a PSF fit with the true PSF (a
    Gaussian of the true FWHM) and the exact variance of the truth sidecar;
    ``covariance_factor``, sqrt of the variance of that fit's flux with the
    truth's neighbour covariances over the variance without them: the
    robust std of (f - f_true) / error expected of errors that use the
    variance plane alone; ``sample``, whether its residual is compared
    (unsaturated, on data at least half a stamp from the edges, no other
    true source within `ISOLATION_RADIUS`).
    """
    sources = read_source_truth(truth_file, detector)
    with fits.open(truth_file) as hdus:
        extension = f"DET1.CHIP{detector}"
        variance = np.array(hdus[f"VARIANCE.{extension}"].data, dtype=np.float64)
        covariance = np.array(hdus[f"COVAR.{extension}"].data, dtype=np.float64)
        header = hdus[f"COVAR.{extension}"].header
        lags = [tuple(int(v) for v in header[f"LAG{k + 1}"].split(",")) for k in range(covariance.shape[0])]
    positions = np.column_stack([sources["x"], sources["y"]])
    neighbours = cKDTree(positions).query(positions, k=2)[0][:, 1]
    is_star = ~np.asarray(sources["is_galaxy"])
    stars = sources[is_star]
    isolated = neighbours[is_star] > ISOLATION_RADIUS
    half = PSF_STAMP // 2
    ny, nx = shape
    x, y = np.asarray(stars["x"], float), np.asarray(stars["y"], float)
    interior = (x >= half + 1) & (x < nx - half - 2) & (y >= half + 1) & (y < ny - half - 2)
    snr = np.full(len(stars), np.nan)
    factor = np.full(len(stars), np.nan)
    offsets = np.arange(-half, half + 1)
    for i in np.nonzero(interior)[0]:
        ix, iy = round(x[i]), round(y[i])
        sigma = float(stars["psf_fwhm"][i]) / FWHM_PER_SIGMA
        gx = np.exp(-0.5 * ((ix + offsets - x[i]) / sigma) ** 2)
        gy = np.exp(-0.5 * ((iy + offsets - y[i]) / sigma) ** 2)
        profile = np.outer(gy, gx)
        profile /= profile.sum()
        rows, columns = slice(iy - half, iy + half + 1), slice(ix - half, ix + half + 1)
        stamp = variance[rows, columns]
        if not np.all(np.isfinite(stamp)):
            continue
        weights = np.zeros((PSF_STAMP + 2, PSF_STAMP + 2))
        weights[1:-1, 1:-1] = profile / stamp
        diagonal = float(np.sum(weights[1:-1, 1:-1] ** 2 * stamp))
        # Plane k holds the covariance of pixel (x, y) with pixel (x + dx, y + dy).
        off_diagonal = sum(
            2.0
            * float(
                np.sum(
                    weights[1:-1, 1:-1]
                    * weights[1 + dy : PSF_STAMP + 1 + dy, 1 + dx : PSF_STAMP + 1 + dx]
                    * covariance[k, rows, columns]
                )
            )
            for k, (dx, dy) in enumerate(lags)
        )
        snr[i] = float(stars["flux"][i]) * math.sqrt(float(np.sum(profile**2 / stamp)))
        factor[i] = math.sqrt((diagonal + off_diagonal) / diagonal)
    stars["snr"] = snr
    stars["covariance_factor"] = factor
    stars["sample"] = interior & isolated & (np.asarray(stars["n_saturated"]) == 0) & np.isfinite(snr)
    return sources, stars


def in_range(stars: Table) -> np.ndarray:
    """The sample stars with true S/N in `SNR_RANGE`."""
    snr = np.asarray(stars["snr"])
    return np.asarray(stars["sample"]) & (snr >= SNR_RANGE[0]) & (snr <= SNR_RANGE[1])


def compare(
    sources: Table, stars: Table, x: np.ndarray, y: np.ndarray, flux: np.ndarray, error: np.ndarray
) -> dict:
    """Match measurements to the true stars and compare fluxes.

    Returns the number compared, the median and robust std of (measured -
    true) / error at true S/N in `SNR_RANGE`, the median of measured / true
    flux - 1 there, the completeness of true stars at S/N >= 10, and the
    detections with no true source (star or galaxy) within
    `SPURIOUS_RADIUS`.
    """
    measured_xy = np.column_stack([x, y])
    distance, index = cKDTree(measured_xy).query(np.column_stack([stars["x"], stars["y"]]))
    matched = distance <= MATCH_RADIUS
    snr = np.asarray(stars["snr"])
    bright = np.isfinite(snr) & (snr >= SNR_RANGE[0])
    chosen = in_range(stars) & matched
    measured, sigma = flux[index[chosen]], error[index[chosen]]
    valid = np.isfinite(measured) & (sigma > 0)
    true_flux = np.asarray(stars["flux"])[chosen][valid]
    pull = (measured[valid] - true_flux) / sigma[valid]
    nearest_truth = cKDTree(np.column_stack([sources["x"], sources["y"]])).query(measured_xy)[0]
    return {
        "n_compared": int(pull.size),
        "median_pull": float(np.median(pull)) if pull.size else math.nan,
        "robust_std_pull": float(mad_std(pull)) if pull.size else math.nan,
        "median_flux_bias": float(np.median(measured[valid] / true_flux) - 1.0) if pull.size else math.nan,
        "completeness_snr10": float(np.mean(matched[bright])) if bright.any() else math.nan,
        "n_true_snr10": int(np.sum(bright)),
        "n_detected": len(x),
        "n_spurious": int(np.sum(nearest_truth > SPURIOUS_RADIUS)),
    }


def psf_points(stars: Table, exposure: VisitImage) -> dict[str, tuple[float, float]]:
    """The centre of the detector and the corners of its fully covered area."""
    meta = stars.meta
    bbox = exposure.bbox
    points = {"centre": (bbox.x.center, bbox.y.center)}
    for nx_ in "01":
        for ny_ in "01":
            points[f"corner{nx_}{ny_}"] = (float(meta[f"FULLX{nx_}"]), float(meta[f"FULLY{ny_}"]))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--detectors", type=int, default=1, help="full-size detectors to process (1-16)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (each tool once per round)")
    parser.add_argument(
        "--star-density",
        type=float,
        default=4.5,
        help="simulated stars with 15 < mag < 23 per arcmin**2 (4.5: about 600 per detector)",
    )
    parser.add_argument(
        "--psf-variation",
        type=float,
        default=0.1,
        help="fractional change of the PSF FWHM from detector centre to corner",
    )
    parser.add_argument("--keep", metavar="DIR", help="write the data and peer files here and keep them")
    args = parser.parse_args()
    if not 1 <= args.detectors <= 16 or args.repeat < 1:
        parser.error("--detectors must be 1-16 and --repeat at least 1")
    check_tools()

    output = ROOT / "benchmarks" / "output"
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        detectors = tuple(range(1, args.detectors + 1))
        simulation = SimulationConfig(
            seed=3, detectors=detectors, star_density=args.star_density, psf_variation=args.psf_variation
        )
        start = time.perf_counter()
        files = write_pawprint_stack(work / "data", 0, simulation)
        print(f"simulated {len(detectors)} full-size detector(s) in {time.perf_counter() - start:.1f} s")
        task = calibrate_task()
        exposures = {d: post_isr_image(files.stack, files.confidence, d) for d in detectors}
        peers = {d: SExtractorPsfex(exposures[d], work / f"peer{d}", task) for d in detectors}

        def ours() -> dict:
            return {d: task.run(exposures[d], name=f"detector {d}") for d in detectors}

        def peer() -> dict:
            return {d: peers[d].run() for d in detectors}

        ours_result, peer_result = ours(), peer()
        ours_times, peer_times = [], []
        step_times: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for function, times in ((ours, ours_times), (peer, peer_times)):
                start = time.perf_counter()
                function()
                times.append(time.perf_counter() - start)
            for step in peers[detectors[0]].step_times:
                step_times.setdefault(step, []).append(sum(peers[d].step_times[step] for d in detectors))
        ratio = statistics.median(a / b for a, b in zip(ours_times, peer_times, strict=True))
        # numpy's and Python's allocations (sep's and Piff's C buffers are not traced).
        tracemalloc.start()
        ours()
        ours_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        peer_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB

        per_detector = []
        for d in detectors:
            exposure = exposures[d]
            sources, stars = true_stars(files.truth, d, exposure.image.array.shape)
            ours_stars, peer_stars = ours_result[d].stars, peer_result[d]
            row = {
                "detector": d,
                "n_true_stars": len(stars),
                "n_sample": int(np.sum(in_range(stars))),
                "covariance_factor": float(np.median(stars["covariance_factor"][in_range(stars)])),
                "ours": compare(
                    sources,
                    stars,
                    np.asarray(ours_stars["x"], float),
                    np.asarray(ours_stars["y"], float),
                    np.asarray(ours_stars["psfInstFlux"], float),
                    np.asarray(ours_stars["psfInstFluxErr"], float),
                ),
                "sextractor": compare(
                    sources,
                    stars,
                    np.asarray(peer_stars["XWIN_IMAGE"], float) - 1.0,
                    np.asarray(peer_stars["YWIN_IMAGE"], float) - 1.0,
                    np.asarray(peer_stars["FLUX_PSF"], float),
                    np.asarray(peer_stars["FLUXERR_PSF"], float),
                ),
                "psf_model": {
                    "ours": ours_stars.meta.get("PSF_MODEL"),
                    "ours_n_stars": ours_stars.meta.get("PSF_NSTARS"),
                    "sextractor": "psfex",
                },
                "psf_fwhm": {},
            }
            for where, (x, y) in psf_points(stars, exposure).items():
                row["psf_fwhm"][where] = {
                    "truth": float(true_psf_fwhm(simulation, files.index, np.array(x), np.array(y))),
                    "ours": psf_fwhm(ours_result[d].exposure.psf, x=x, y=y),
                    "sextractor": peers[d].psf_fwhm(x, y),
                }
            per_detector.append(row)

    n = len(detectors)
    summary = {
        "detectors": n,
        "repeat": args.repeat,
        "star_density": args.star_density,
        "psf_variation": args.psf_variation,
        "ours_seconds_per_detector": statistics.median(ours_times) / n,
        "peer_seconds_per_detector": statistics.median(peer_times) / n,
        "peer_step_seconds_per_detector": {k: statistics.median(v) / n for k, v in step_times.items()},
        "time_ratio": ratio,
        "time_ratio_target": 1.5,
        "per_detector": per_detector,
    }
    print_table(summary)
    record(
        "bench_calibrate",
        [
            Row("calibrateImage / SExtractor + PSFEx, per full-size detector",
                summary["ours_seconds_per_detector"], summary["peer_seconds_per_detector"], "s", "<= 1.5",
                ours_peak),
            Row("peak memory: calibrateImage (traced) / largest peer process (RSS)", ours_peak, peer_peak,
                "MiB"),
        ],
    )  # fmt: skip
    (output / "bench_calibrate.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {output / 'bench_calibrate.json'}")


def print_table(summary: dict) -> None:
    """Print the timing ratio and, per detector, the accuracy figures."""
    print(f"\ntimes per full-size detector (median over {summary['repeat']} rounds):")
    print(f"  CalibrateImageTask.run:                {summary['ours_seconds_per_detector']:7.2f} s")
    print(f"  SExtractor + PSFEx + SExtractor:       {summary['peer_seconds_per_detector']:7.2f} s")
    for step, seconds in summary["peer_step_seconds_per_detector"].items():
        print(f"    {step:35s}{seconds:7.2f} s")
    print(f"  ratio ours / peer: {summary['time_ratio']:.2f} (target <= {summary['time_ratio_target']})")
    lo, hi = SNR_RANGE
    for row in summary["per_detector"]:
        model = row["psf_model"]
        print(
            f"\ndetector {row['detector']}: {row['n_true_stars']} true stars, {row['n_sample']} in the "
            f"sample at true S/N {lo:g}-{hi:g}; our PSF model {model['ours']} ({model['ours_n_stars']} stars)"
        )
        print(f"  {'':44s} {'ours':>8s} {'SExtractor':>11s}")
        for key, label in (
            ("median_pull", "median (f - f_true) / err"),
            ("robust_std_pull", "robust std (f - f_true) / err"),
            ("median_flux_bias", "median f / f_true - 1"),
            ("n_compared", "stars compared"),
            ("completeness_snr10", "completeness, true S/N >= 10"),
            ("n_true_snr10", "true stars at S/N >= 10"),
            ("n_detected", "detections"),
            ("n_spurious", f"detections > {SPURIOUS_RADIUS:g} px from any true source"),
        ):
            ours, peer = row["ours"][key], row["sextractor"][key]
            fmt = "{:>8d} {:>11d}" if isinstance(ours, int) else "{:>8.3f} {:>11.3f}"
            print(f"  {label:44s} " + fmt.format(ours, peer))
        print(
            f"  robust std expected of errors without the pixel covariances: {row['covariance_factor']:.3f}"
        )
        print(f"  PSF FWHM (pixels)  {'truth':>8s} {'ours':>17s} {'SExtractor':>17s}")
        for where, values in row["psf_fwhm"].items():
            truth = values["truth"]
            print(
                f"    {where:14s} {truth:8.3f} {values['ours']:8.3f} ({values['ours'] / truth - 1:+.1%})"
                f" {values['sextractor']:8.3f} ({values['sextractor'] / truth - 1:+.1%})"
            )


if __name__ == "__main__":
    main()
