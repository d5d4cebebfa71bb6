"""A synthetic multi-band field for the object tests: `coadd_field`'s dithered
visits with known stars (a range of magnitudes and colours), round Gaussian
galaxies and a few close pairs of stars, coadded in each band on one patch,
or put into a butler repository as ``preliminary_visit_image`` datasets with
their sky regions.
"""

from __future__ import annotations

import dataclasses
import math
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from lsst.daf.butler import Butler, DatasetType
from lsst.images.cells import CellCoadd
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

import coadd_field as field
from lsst.obs.vista.coadd import AssembleCellCoaddTask, MakeDirectWarpTask
from lsst.obs.vista.objects import (
    CoaddNoise,
    DetectCoaddPeaksConfig,
    DetectCoaddPeaksTask,
    ForcedPhotObjectsTask,
    MeasureObjectsRefTask,
    MergeCoaddDetectionsTask,
    ObjectMeasurementConfig,
    coadd_planes,
    mean_psf_kernel,
)

BANDS = ("J", "Ks")
"""The two bands."""

PRIORITY = ["Ks", "J"]
"""The reference-band priority of `measure_patch`."""

SPACING = 32
"""Grid spacing of the objects (tract pixels): isolated, except the pairs."""

COVERED_HALF_HEIGHT = 260
"""Half-height (tract pixels) of the band around the field centre that
every visit covers: the detectors are 680 tract pixels tall, the dithers
move them by up to 62."""

COVERED_HALF_WIDTH = 640
"""Half-width (tract pixels) of the band around the field centre that every
visit covers: the two detectors and their gap are 1428 tract pixels wide,
the dithers move them by up to 57."""

PAIR_SEPARATION = 13.0
"""Separation (tract pixels, two coadd PSF FWHM) of the close pairs."""


@dataclasses.dataclass
class Truth:
    """Positions (deg), fluxes (nJy, by band), galaxy sizes (arcsec, 0 for
    stars) and tract pixel positions of the field's objects."""

    ra: np.ndarray
    dec: np.ndarray
    flux: dict[str, np.ndarray]
    size: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @property
    def is_star(self) -> np.ndarray:
        return self.size == 0


def truth(seed: int = 7, covered_half_height: float = COVERED_HALF_HEIGHT, skymap=None) -> Truth:
    """The objects on a jittered grid over the inner box of the patch at the
    field centre (of ``skymap``, `coadd_field`'s if not given), where every
    visit covers it (``covered_half_height`` around the centre: smaller for
    smaller detectors).  Colours: J - Ks uniform in [-0.3, 1], J - H =
    0.6 (J - Ks) and z - J = 0.8 (J - Ks)."""
    rng = np.random.default_rng(seed)
    tract = (skymap or field.skymap())[0]
    patch = tract.find_patch(*field.CENTRE)
    inner = patch.inner_bbox
    xs = np.arange(inner.x.start + SPACING / 2, inner.x.stop - SPACING / 2, SPACING)
    ys = np.arange(inner.y.start + SPACING / 2, inner.y.stop - SPACING / 2, SPACING)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    centre_x, centre_y = (float(value[0]) for value in tract.sky_to_pixel(*field.CENTRE))
    covered = (np.abs(y - centre_y) < covered_half_height) & (np.abs(x - centre_x) < COVERED_HALF_WIDTH)
    x, y = x[covered], y[covered]
    x = x + rng.uniform(-5, 5, x.size)
    y = y + rng.uniform(-5, 5, y.size)
    n = x.size
    galaxy = rng.uniform(size=n) < 0.2
    magnitude = np.where(galaxy, rng.uniform(18.0, 21.0, n), rng.uniform(18.0, 23.5, n))
    colour = rng.uniform(-0.3, 1.0, n)
    size = np.where(galaxy, rng.uniform(0.5, 1.0, n), 0.0)
    # Close pairs: a companion star beside some bright stars.
    hosts = np.nonzero(~galaxy & (magnitude < 20.5))[0][:4]
    angle = rng.uniform(0, 2 * math.pi, hosts.size)
    x = np.append(x, x[hosts] + PAIR_SEPARATION * np.cos(angle))
    y = np.append(y, y[hosts] + PAIR_SEPARATION * np.sin(angle))
    magnitude = np.append(magnitude, magnitude[hosts] + 0.7)
    colour = np.append(colour, rng.uniform(-0.3, 1.0, hosts.size))
    size = np.append(size, np.zeros(hosts.size))
    ra, dec = tract.wcs.wcs_pix2world(x, y, 0)
    flux_j = (magnitude * u.ABmag).to_value(u.nJy)
    return Truth(
        ra=ra,
        dec=dec,
        flux={
            "z": flux_j * 10 ** (-0.4 * 0.8 * colour),
            "J": flux_j,
            "H": flux_j * 10 ** (0.4 * 0.6 * colour),
            "Ks": flux_j * 10 ** (0.4 * colour),
        },
        size=size,
        x=x,
        y=y,
    )


def galaxy_images(
    base, visit: field.Visit, objects: Truth, band: str, layout: field.Layout = field.LAYOUT
) -> dict[int, np.ndarray]:
    """Images (nJy) of the field's galaxies on a visit's two detectors of
    ``layout``: round Gaussians convolved with the visit's Gaussian PSF."""
    ny, nx = base.bbox.shape
    images = {}
    for detector in layout.detectors:
        wcs = field.detector_wcs(visit, detector, nx, ny, layout)
        pixels = np.zeros((ny, nx))
        galaxies = np.nonzero(~objects.is_star)[0]
        x, y = wcs.wcs_world2pix(objects.ra[galaxies], objects.dec[galaxies], 0)
        for k, xs, ys in zip(galaxies, x, y, strict=True):
            sigma = math.hypot(objects.size[k] / layout.pixel_scale, visit.sigma)
            field.add_gaussian(pixels, xs, ys, sigma, objects.flux[band][k])
        images[detector] = pixels
    return images


def coadd(base, objects: Truth, band: str, *, seed: int, skymap=None) -> CellCoadd:
    """The coadd of one band on the patch at the field centre (``skymap``:
    the test skymap's unless given)."""
    skymap = skymap or field.skymap()
    patch = skymap[0].find_patch(*field.CENTRE)
    stars = {"ra": objects.ra[objects.is_star], "dec": objects.dec[objects.is_star]}
    stars["flux"] = objects.flux[band][objects.is_star]
    warps, noises = [], []
    for visit in field.VISITS:
        images = field.make_visit_images(
            base, visit, stars, seed=seed, extra=galaxy_images(base, visit, objects, band)
        )
        result = MakeDirectWarpTask().run(
            images, skymap=skymap, skymap_name="test", tract_id=0, patch_id=patch.id, visit=visit.visit
        )
        warps.append(result.warp)
        noises.append(result.noise_warp)
    return AssembleCellCoaddTask().run(warps, noises).coadd


@dataclasses.dataclass
class PatchObjects:
    """What `measure_patch` made of one patch's coadds."""

    merged: Table
    """Merged detections (parents and deblended children)."""

    footprints: Any
    """The merged footprints (`object_detection_merged`'s footprint image)."""

    reference: Table
    """Reference-band measurement."""

    forced: dict[str, Table]
    """Forced measurement, by band."""


def measure_patch(coadds: dict[str, CellCoadd], patch_id: int, skymap=None) -> PatchObjects:
    """Run the object tasks in-process on one patch's coadds (by band):
    detection, merge with `PRIORITY`, reference and forced measurement
    (``skymap``: the test skymap's unless given)."""
    detections = {band: DetectCoaddPeaksTask().run(coadd) for band, coadd in coadds.items()}
    tables = {band: result.detections for band, result in detections.items()}
    merge = MergeCoaddDetectionsTask()
    merge.config.priorityList = PRIORITY
    merged = merge.run(tables, {b: d.footprints for b, d in detections.items()}, tract=0, patch=patch_id)
    ref = MeasureObjectsRefTask()
    ref.config.priorityList = PRIORITY
    reference = ref.run(
        coadds,
        merged.merged,
        merged.merged_footprints,
        detections=tables,
        skymap=skymap or field.skymap(),
        tract=0,
        patch=patch_id,
    ).measurement
    forced = {
        band: ForcedPhotObjectsTask()
        .run(coadd, reference, merged.merged_footprints, detections=tables[band])
        .measurement
        for band, coadd in coadds.items()
    }
    return PatchObjects(merged.merged, merged.merged_footprints, reference, forced)


MATCH_RADIUS = 3.0
"""Tract pixels between an object and its truth."""


def nearest(x, y, to_x: np.ndarray, to_y: np.ndarray) -> np.ndarray:
    """Index of the nearest of (``to_x``, ``to_y``) within `MATCH_RADIUS` of
    each (``x``, ``y``), -1 if none."""
    distance = np.hypot(np.asarray(x)[:, None] - to_x[None], np.asarray(y)[:, None] - to_y[None])
    return np.where(distance.min(axis=1) < MATCH_RADIUS, distance.argmin(axis=1), -1)


def isolated_stars(table: Table, objects: Truth, index: np.ndarray) -> np.ndarray:
    """Rows of an object table that are a truth star (``index``: `nearest`'s
    match of each row) alone in their footprint."""
    star = (index >= 0) & np.asarray(table["detect_isIsolated"])
    star[star] = objects.is_star[index[star]]
    return star


def robust_std(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def psf_flux_pulls(
    table: Table, objects: Truth, index: np.ndarray, band: str
) -> tuple[np.ndarray, np.ndarray]:
    """The isolated stars' forced PSF-flux pulls in ``band``, (measured -
    truth) / error, and their truth S/N (truth flux over error)."""
    star = isolated_stars(table, objects, index)
    error = np.asarray(table[f"{band}_psfFluxErr"][star])
    truth_flux = objects.flux[band][index[star]]
    return (np.asarray(table[f"{band}_psfFlux"][star]) - truth_flux) / error, truth_flux / error


SOURCE_EXTRACTOR = "source-extractor"
"""Debian's SExtractor binary (package ``source-extractor``)."""

SOURCE_EXTRACTOR_COLUMNS = (
    "NUMBER",
    "X_IMAGE",
    "Y_IMAGE",
    "FLUX_AUTO",
    "FLUXERR_AUTO",
    "KRON_RADIUS",
    "FLUX_APER",
    "FLUXERR_APER",
    "FLAGS",
)
"""Columns of the peer's catalogues (FLUX_APER has one entry per aperture)."""


_LARGEST_FILTER = 31
"""Side (pixels) of SExtractor's largest detection filter."""


@dataclasses.dataclass
class PeerCatalogues:
    """SExtractor's dual-image catalogues of a patch.

    ``catalogues`` by measurement band (``x``, ``y`` in tract pixels beside
    SExtractor's own columns, fluxes in nJy), ``seconds`` and
    ``cpu_seconds`` the wall and CPU time of its runs (not counting the
    writing of its inputs) and ``apertures`` the radii (pixels) of the
    FLUX_APER entries.
    """

    catalogues: dict[str, Table]
    seconds: float
    cpu_seconds: float
    apertures: list[float]


def source_extractor_dual(
    coadds: dict[str, CellCoadd],
    detection_band: str,
    directory: Path,
    detection: DetectCoaddPeaksConfig | None = None,
    measurement: ObjectMeasurementConfig | None = None,
) -> PeerCatalogues:
    """Run SExtractor in dual-image mode on a patch's coadds.

    The detection image is ``detection_band``'s coadd; every band is the
    measurement image of one run.  Weights are the inverse of the coadd's
    variance plane (0 where the coadd has no data), taken as given (the
    coadds' variances are absolute).  The settings are ours
    (`DetectCoaddPeaksConfig`, `ObjectMeasurementConfig`): the same
    background mesh, the coadd's mean PSF as the detection filter, the same
    threshold in units of the filtered image's real noise (SExtractor
    thresholds in units of the unfiltered pixel noise: ours times the
    filter's white-noise factor times the resampling covariance's factor),
    minimum area, deblending and apertures, and Kron's factor and smallest
    radius.  The measurement images get no background (BACK_TYPE MANUAL,
    0): the coadds are sky-subtracted per visit, and on this dense field
    SExtractor's mesh background, which keeps the stars' wings, would make
    its aperture fluxes low by 1.4% at radius 12 and 2.5% at radius 17
    (ours are within 0.3% of the truth), a difference of backgrounds, not
    of the photometry compared.
    """
    if shutil.which(SOURCE_EXTRACTOR) is None:
        raise FileNotFoundError(f"{SOURCE_EXTRACTOR} is not installed (Debian package source-extractor)")
    detection = detection or DetectCoaddPeaksConfig()
    measurement = measurement or ObjectMeasurementConfig()
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for band, coadd in coadds.items():
        planes = coadd_planes(coadd, list(detection.badMaskPlanes), detection.backgroundCellSize)
        weight = np.zeros(planes.variance.shape, dtype=np.float32)
        weight[planes.usable] = 1.0 / planes.variance[planes.usable]
        image = np.where(planes.usable, coadd.image.array, 0.0).astype(np.float32)
        files[band] = (directory / f"{band}.fits", directory / f"{band}.weight.fits")
        fits.PrimaryHDU(image).writeto(files[band][0], overwrite=True)
        fits.PrimaryHDU(weight).writeto(files[band][1], overwrite=True)
        if band == detection_band:
            kernel = mean_psf_kernel(coadd)
            # SExtractor's filters are at most 31 pixels wide.
            crop = max(0, (kernel.shape[0] - _LARGEST_FILTER) // 2)
            kernel = kernel[crop : kernel.shape[0] - crop, crop : kernel.shape[1] - crop]
            kernel = kernel / kernel.sum()
            noise = CoaddNoise(planes.noise, planes.variance, planes.usable, detection.maxLag)
            threshold = detection.threshold * noise.factor(kernel) * math.sqrt(float(np.sum(kernel**2)))
    conv = directory / "psf.conv"
    rows = [" ".join(f"{value:.8f}" for value in row) for row in kernel]
    conv.write_text("CONV NORM\n# the detection band's mean coadd PSF\n" + "\n".join(rows) + "\n")
    parameters = directory / "objects.param"
    parameters.write_text(
        "\n".join(
            f"{c}({len(measurement.apertureRadii)})" if c.endswith("APER") else c
            for c in SOURCE_EXTRACTOR_COLUMNS
        )
        + "\n"
    )
    settings = {
        "PARAMETERS_NAME": str(parameters),
        "CATALOG_TYPE": "FITS_1.0",
        "WEIGHT_TYPE": "MAP_WEIGHT,MAP_WEIGHT",
        "RESCALE_WEIGHTS": "N",
        "WEIGHT_GAIN": "N",
        "GAIN": "0",
        "SATUR_LEVEL": "1e15",
        "FILTER": "Y",
        "FILTER_NAME": str(conv),
        "DETECT_THRESH": f"{threshold:.6f}",
        "ANALYSIS_THRESH": f"{threshold:.6f}",
        "DETECT_MINAREA": str(detection.minArea),
        "DEBLEND_NTHRESH": str(detection.deblendThresholds),
        "DEBLEND_MINCONT": str(detection.deblendContrast),
        "CLEAN": "N",
        "BACK_TYPE": "AUTO,MANUAL",
        "BACK_VALUE": "0,0",
        "BACK_SIZE": str(detection.backgroundCellSize),
        "BACK_FILTERSIZE": "3",
        "PHOT_APERTURES": ",".join(f"{2 * r:g}" for r in measurement.apertureRadii),
        "PHOT_AUTOPARAMS": f"{measurement.kronFactor:g},{measurement.kronMinRadius:g}",
        "MEMORY_PIXSTACK": str(max(300000, coadds[detection_band].image.array.size)),
        "NTHREADS": "1",
        "VERBOSE_TYPE": "QUIET",
    }
    catalogues = {}
    seconds = 0.0
    cpu_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    detection_image, detection_weight = files[detection_band]
    for band, (image, weight) in files.items():
        catalogue = directory / f"{band}.cat"
        command = [
            SOURCE_EXTRACTOR,
            f"{detection_image},{image}",
            "-c",
            "/dev/null",
            "-CATALOG_NAME",
            str(catalogue),
            "-WEIGHT_IMAGE",
            f"{detection_weight},{weight}",
        ]
        command += [item for key, value in settings.items() for item in (f"-{key}", value)]
        start = time.perf_counter()
        run = subprocess.run(command, cwd=directory, capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"{SOURCE_EXTRACTOR} failed on {image}: {run.stderr.strip()}")
        seconds += time.perf_counter() - start
        table = Table.read(catalogue, hdu=2 if settings["CATALOG_TYPE"] == "FITS_LDAC" else 1)
        bbox = coadds[band].bbox
        # SExtractor's pixel centres are at integers from 1.
        table["x"] = np.asarray(table["X_IMAGE"], dtype=float) - 1.0 + bbox.x.start
        table["y"] = np.asarray(table["Y_IMAGE"], dtype=float) - 1.0 + bbox.y.start
        catalogues[band] = table
    cpu_end = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = sum(getattr(cpu_end, f) - getattr(cpu_start, f) for f in ("ru_utime", "ru_stime"))
    return PeerCatalogues(catalogues, seconds, cpu_seconds, list(measurement.apertureRadii))


def sky_polygon(image) -> ConvexPolygon:
    """The sky region of a detector image: its corners through its WCS."""
    bbox = image.bbox
    xs = np.array([bbox.x.start, bbox.x.stop, bbox.x.stop, bbox.x.start], dtype=float) - 0.5
    ys = np.array([bbox.y.start, bbox.y.start, bbox.y.stop, bbox.y.stop], dtype=float) - 0.5
    sky = image.sky_projection.pixel_to_sky(x=xs, y=ys)
    return ConvexPolygon(
        [UnitVector3d(LonLat.fromDegrees(r, d)) for r, d in zip(sky.ra.deg, sky.dec.deg, strict=True)]
    )


def put_visits(
    butler: Butler,
    base,
    objects: Truth,
    *,
    band: str | None = None,
    visits: tuple[field.Visit, ...] = field.VISITS,
    seed: int = 40,
    run: str = "visits",
    layout: field.Layout = field.LAYOUT,
) -> None:
    """Put the detector images of ``visits`` (``layout``'s detectors) in
    ``base``'s instrument and ``band`` (``base``'s if not given) as
    ``preliminary_visit_image``, with their visit and detector sky regions,
    into ``run``."""
    instrument, band = base.obs_info.instrument, band or base.band
    (physical_filter,) = butler.registry.queryDimensionRecords(
        "physical_filter", instrument=instrument, band=band
    )
    butler.registry.syncDimensionData("day_obs", {"instrument": instrument, "id": 20260101})
    dataset_type = DatasetType(
        "preliminary_visit_image",
        ("instrument", "visit", "detector"),
        "VisitImage",
        universe=butler.dimensions,
    )
    butler.registry.registerDatasetType(dataset_type)
    butler.collections.register(run)
    stars = {
        "ra": objects.ra[objects.is_star],
        "dec": objects.dec[objects.is_star],
        "flux": objects.flux[band][objects.is_star],
    }
    for visit in visits:
        images = field.make_visit_images(
            base,
            visit,
            stars,
            seed=seed,
            extra=galaxy_images(base, visit, objects, band, layout),
            layout=layout,
        )
        regions = {detector: sky_polygon(image) for detector, image in images.items()}
        vertices = [v for region in regions.values() for v in region.getVertices()]
        butler.registry.insertDimensionData(
            "visit",
            {
                "instrument": instrument, "id": visit.visit, "name": f"v{visit.visit}",
                "physical_filter": physical_filter.name, "day_obs": 20260101,
                "region": ConvexPolygon.convexHull(vertices),
            },
        )  # fmt: skip
        for detector, image in images.items():
            butler.registry.insertDimensionData(
                "visit_detector_region",
                {
                    "instrument": instrument,
                    "visit": visit.visit,
                    "detector": detector,
                    "region": regions[detector],
                },
            )
            butler.put(
                image, dataset_type, instrument=instrument, visit=visit.visit, detector=detector, run=run
            )
