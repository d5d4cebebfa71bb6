"""A synthetic multi-band field for the object tests: `coadd_field`'s dithered
visits with known stars (a range of magnitudes and colours), round Gaussian
galaxies and a few close pairs of stars, coadded in each band on one patch,
or put into a butler repository as ``preliminary_visit_image`` datasets with
their sky regions.
"""

from __future__ import annotations

import dataclasses
import math

import astropy.units as u
import numpy as np
from lsst.daf.butler import Butler, DatasetType
from lsst.images.cells import CellCoadd
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

import coadd_field as field
from lsst.obs.vista.coadd import AssembleCellCoaddTask, MakeDirectWarpTask

BANDS = ("J", "Ks")
"""The two bands, in the reference-band priority order."""

SPACING = 32
"""Grid spacing of the objects (tract pixels): isolated, except the pairs."""

COVERED_HALF_HEIGHT = 260
"""Half-height (tract pixels) of the band around the field centre that
every visit covers: the detectors are 680 tract pixels tall, the dithers
move them by up to 62."""

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
    0.6 (J - Ks)."""
    rng = np.random.default_rng(seed)
    tract = (skymap or field.skymap())[0]
    patch = tract.find_patch(*field.CENTRE)
    inner = patch.inner_bbox
    xs = np.arange(inner.x.start + SPACING / 2, inner.x.stop - SPACING / 2, SPACING)
    ys = np.arange(inner.y.start + SPACING / 2, inner.y.stop - SPACING / 2, SPACING)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    centre_y = float(tract.sky_to_pixel(*field.CENTRE)[1][0])
    covered = np.abs(y - centre_y) < covered_half_height
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
        flux={"J": flux_j, "H": flux_j * 10 ** (0.4 * 0.6 * colour), "Ks": flux_j * 10 ** (0.4 * colour)},
        size=size,
        x=x,
        y=y,
    )


def galaxy_images(base, visit: field.Visit, objects: Truth, band: str) -> dict[int, np.ndarray]:
    """Images (nJy) of the field's galaxies on a visit's two detectors: round
    Gaussians convolved with the visit's Gaussian PSF."""
    ny, nx = base.bbox.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    images = {}
    for detector in (1, 2):
        wcs = field.detector_wcs(visit, detector, nx, ny)
        pixels = np.zeros((ny, nx))
        galaxies = np.nonzero(~objects.is_star)[0]
        x, y = wcs.wcs_world2pix(objects.ra[galaxies], objects.dec[galaxies], 0)
        for k, xs, ys in zip(galaxies, x, y, strict=True):
            if -40 < xs < nx + 40 and -40 < ys < ny + 40:
                sigma2 = (objects.size[k] / field.PIXEL_SCALE) ** 2 + visit.sigma**2
                r2 = (xx - xs) ** 2 + (yy - ys) ** 2
                pixels += objects.flux[band][k] * np.exp(-0.5 * r2 / sigma2) / (2 * math.pi * sigma2)
        images[detector] = pixels
    return images


def coadd(base, objects: Truth, band: str, *, seed: int) -> CellCoadd:
    """The coadd of one band on the patch at the field centre."""
    skymap = field.skymap()
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
) -> None:
    """Put the detector images of ``visits`` in ``base``'s instrument and
    ``band`` (``base``'s if not given) as ``preliminary_visit_image``, with
    their visit and detector sky regions, into ``run``."""
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
            base, visit, stars, seed=seed, extra=galaxy_images(base, visit, objects, band)
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
