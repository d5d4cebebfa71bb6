"""PSF star selection and the Piff PSF model of calibrateImage, on synthetic
fields of Gaussian stars whose FWHM varies across the detector."""

import dataclasses
import logging
from pathlib import Path

import astropy.units as u
import galsim
import numpy as np
import pytest
import sep
from astropy.table import Table
from lsst.images import Box, Image, Mask, VisitImage
from lsst.images.psfs import GaussianPointSpreadFunction, PiffWrapper
from scipy.spatial import cKDTree

from lsst.obs.vista import DecamCp
from lsst.obs.vista.calibrate import SourceMeasurementTask, usable_for_calibration
from lsst.obs.vista.calibrate.psf import PiffPsfDeterminerTask, PsfStarSelectorTask
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import DecamCpIsrConfig, DecamCpIsrTask, make_mask_schema
from lsst.obs.vista.psf_shape import FWHM_PER_SIGMA, psf_fwhm

CP_IMAGE = Path(__file__).parent / "data" / "decam_cp" / "testcase4" / "c4d_170316_062107_ooi_z_ls9.N2.fits"


@dataclasses.dataclass
class Field:
    """A synthetic background-subtracted detector and its truth."""

    image: np.ndarray
    variance: np.ndarray
    bad: np.ndarray
    bbox: Box
    centre_fwhm: float
    variation: float
    truth_xy: np.ndarray
    is_star: np.ndarray

    def optical_fwhm(self, x, y):
        """FWHM (pixels) of the Gaussian PSF at parent position (x, y), before
        the pixel's integration."""
        cx, cy = self.bbox.x.center, self.bbox.y.center
        rho2 = ((x - cx) ** 2 + (y - cy) ** 2) / (
            (self.bbox.x.size - 1) ** 2 / 4 + (self.bbox.y.size - 1) ** 2 / 4
        )
        return self.centre_fwhm * (1.0 + self.variation * rho2)

    def true_fwhm(self, x, y):
        """Second-moment FWHM of the stars at (x, y): the optical Gaussian
        convolved with the square pixel (variance 1/12 per axis)."""
        sigma = self.optical_fwhm(x, y) / FWHM_PER_SIGMA
        return FWHM_PER_SIGMA * np.sqrt(sigma**2 + 1.0 / 12.0)

    def points(self):
        """The pixel centres of the four corners and the centre."""
        xs, ys = (self.bbox.x.start, self.bbox.x.stop - 1), (self.bbox.y.start, self.bbox.y.stop - 1)
        return [(x, y) for x in xs for y in ys] + [(self.bbox.x.center, self.bbox.y.center)]


def make_field(
    shape=(1024, 1024),
    n_stars=200,
    n_galaxies=60,
    *,
    x0=0,
    y0=0,
    centre_fwhm=2.0,
    variation=0.15,
    sky=1000.0,
    read_noise=5.0,
    seed=1,
):
    """Draw pixel-integrated Gaussian stars (optical FWHM from centre_fwhm at
    the centre to (1 + variation) times that at the corners) and PSF-convolved exponential
    galaxies, with Poisson noise on sky + sources and Gaussian read noise
    (1 e-/ADU); the sky is subtracted."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    bbox = Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    field = Field(
        image=np.zeros(shape, np.float32),
        variance=np.zeros(shape, np.float32),
        bad=np.zeros(shape, bool),
        bbox=bbox,
        centre_fwhm=centre_fwhm,
        variation=variation,
        truth_xy=np.zeros((0, 2)),
        is_star=np.zeros(0, bool),
    )
    canvas = galsim.ImageD(nx, ny, xmin=x0, ymin=y0, scale=1.0)
    n = n_stars + n_galaxies
    xy = rng.uniform([x0 + 5, y0 + 5], [x0 + nx - 6, y0 + ny - 6], (n, 2))
    flux = np.exp(rng.uniform(np.log(2e4), np.log(1e6), n))
    for k, ((x, y), f) in enumerate(zip(xy, flux, strict=True)):
        profile = galsim.Gaussian(fwhm=field.optical_fwhm(x, y))
        if k >= n_stars:
            galaxy = galsim.Exponential(half_light_radius=rng.uniform(1.5, 3.0))
            profile = galsim.Convolve(galaxy.shear(g1=rng.uniform(-0.3, 0.3), g2=0.0), profile)
        stamp = profile.withFlux(f).drawImage(nx=31, ny=31, scale=1.0, center=galsim.PositionD(x, y))
        overlap = stamp.bounds & canvas.bounds
        canvas[overlap] += stamp[overlap]
    model = canvas.array
    field.image[...] = rng.poisson(model + sky) - sky + rng.normal(0.0, read_noise, model.shape)
    field.variance[...] = model + sky + read_noise**2
    field.truth_xy = xy
    field.is_star = np.arange(n) < n_stars
    return field


def detect(field):
    """A detection catalogue as calibrateImage gives it to the PSF stage: sep
    detections measured by SourceMeasurementTask (HSM moments) with the header
    PSF, S/N from the header-PSF flux."""
    image, variance = field.image, field.variance
    objects = sep.extract(image, 5.0, var=variance, minarea=5)
    detections = Table(
        {
            "x": objects["x"] + field.bbox.x.start,
            "y": objects["y"] + field.bbox.y.start,
            "blended": (objects["flag"] & sep.OBJ_MERGED) != 0,
        }
    )
    mask = Mask(schema=make_mask_schema(), bbox=field.bbox)
    sources = (
        SourceMeasurementTask()
        .run(
            image.astype(np.float32),
            variance.astype(np.float32),
            mask,
            field.bbox,
            detections,
            header_psf(field),
        )
        .sources
    )
    sources["instFlux"] = sources["psfInstFlux"]
    sources["instFluxErr"] = sources["psfInstFluxErr"]
    sources["flag"] = ~usable_for_calibration(sources)
    return sources


def header_psf(field, fwhm=2.2):
    return GaussianPointSpreadFunction(fwhm / FWHM_PER_SIGMA, bounds=field.bbox, stamp_size=25)


def fit(field, sources, name="synthetic", config=None):
    task = PiffPsfDeterminerTask(config=config)
    return task.run(field.image, field.variance, field.bad, field.bbox, sources, header_psf(field), name)


@pytest.fixture(scope="module")
def field():
    # A DECam-like parent origin: positions are not array indices.
    return make_field(x0=1000, y0=2000)


@pytest.fixture(scope="module")
def sources(field):
    return detect(field)


@pytest.fixture(scope="module")
def result(field, sources):
    return fit(field, sources)


def truth_match(field, sources):
    distance, index = cKDTree(field.truth_xy).query(np.column_stack([sources["x"], sources["y"]]))
    return field.is_star[index] & (distance < 1.0)


def test_selection_picks_unflagged_isolated_stars(field, sources):
    flagged = sources.copy()
    flagged["flag"][: len(sources) // 4] = True
    candidate = PsfStarSelectorTask().run(flagged).candidate
    is_star = truth_match(field, sources)
    assert candidate.sum() > 50
    assert not candidate[flagged["flag"]].any()
    assert is_star[candidate].mean() > 0.95
    assert candidate[~is_star].sum() <= 0.1 * (~is_star).sum()


def test_selection_of_nothing():
    empty = Table({c: np.zeros(0) for c in ("x", "y", "instFlux", "instFluxErr", "ixx", "iyy", "ixy")})
    empty["flag"] = np.zeros(0, bool)
    assert PsfStarSelectorTask().run(empty).candidate.shape == (0,)


def test_piff_recovers_the_varying_fwhm(field, result):
    assert not result.is_fallback and result.reason is None
    assert isinstance(result.psf, PiffWrapper)
    for x, y in field.points():
        truth = field.true_fwhm(x, y)
        assert psf_fwhm(result.psf, x=x, y=y) == pytest.approx(truth, rel=0.02), (x, y)
    assert result.fwhm == pytest.approx(field.true_fwhm(field.bbox.x.center, field.bbox.y.center), rel=0.02)
    assert result.metadata["PSF_MODEL"] == "piff"
    assert result.metadata["PSF_FWHM"] == result.fwhm


def test_used_and_reserved_stars_are_disjoint_candidates(result):
    assert not (result.used & result.reserved).any()
    assert (result.candidate[result.used | result.reserved]).all()
    assert result.n_used == result.used.sum() == result.metadata["PSF_NSTARS"]
    fitted = result.n_used + result.reserved.sum()
    assert result.reserved.sum() == pytest.approx(0.2 * fitted, abs=0.1 * fitted)


def test_model_is_centred_on_the_stars_in_parent_coordinates(field, result):
    # The stellar image drawn at a star's parent position peaks on its pixel.
    x, y = field.truth_xy[0]
    stellar = result.psf.compute_stellar_image(x=x, y=y)
    j, i = np.unravel_index(np.argmax(stellar.array), stellar.array.shape)
    assert (stellar.bbox.x.start + i, stellar.bbox.y.start + j) == (round(x), round(y))


@pytest.mark.parametrize("n_stars", [0, 3])
def test_too_few_stars_keep_the_header_psf(field, sources, n_stars, caplog):
    # Stars the selector takes from the whole field, so that all n are PSF stars.
    task = PiffPsfDeterminerTask()
    selected = task.starSelector.run(sources).candidate & truth_match(field, sources)
    few = sources[np.flatnonzero(selected)[:n_stars]]
    fallback = header_psf(field)
    with caplog.at_level(logging.INFO):
        result = task.run(field.image, field.variance, field.bad, field.bbox, few, fallback, "tiny")
    assert result.psf is fallback and result.is_fallback
    assert result.reason.startswith(f"{n_stars} PSF stars")
    assert result.metadata["PSF_MODEL"] == "header" and result.metadata["PSF_NSTARS"] == 0
    assert result.fwhm == pytest.approx(psf_fwhm(fallback, x=0.0, y=0.0))
    assert not result.used.any() and not result.reserved.any()
    lines = [r.getMessage() for r in caplog.records if "PSF" in r.getMessage()]
    assert lines == [f"tiny: {n_stars} PSF stars (< minStars=5); keeping the header PSF."]


def test_a_singular_fit_keeps_the_header_psf(field, sources, caplog):
    # NO_DATA stamps give Piff nothing to fit: it fails, and the header PSF is kept.
    blank = dataclasses.replace(field, bad=np.ones_like(field.bad))
    with caplog.at_level(logging.WARNING):
        result = fit(blank, sources, name="blank")
    assert result.is_fallback and "Piff" in result.reason
    assert [r.getMessage() for r in caplog.records if r.name.endswith("psfDeterminer")][0].startswith(
        "blank: Piff fit failed"
    )


def test_visit_image_round_trip(tmp_path):
    # A real DECam CP cutout (nonzero parent origin) gives the VisitImage its
    # WCS, observation and detector; the pixels are a synthetic star field.
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    stack = DecamCpIsrTask(config=config).run(read_image_hdu(CP_IMAGE, 1, unit=u.adu)).outputExposure
    bbox = stack.bbox
    assert bbox.x.start != 0 and bbox.y.start != 0
    synthetic = make_field(
        (bbox.y.size, bbox.x.size), n_stars=80, n_galaxies=0, x0=bbox.x.start, y0=bbox.y.start
    )
    result = fit(synthetic, detect(synthetic))
    assert not result.is_fallback
    exposure = VisitImage(
        Image(synthetic.image, bbox=bbox, unit=stack.unit, sky_projection=stack.sky_projection),
        mask=stack.mask,
        variance=Image(synthetic.variance, bbox=bbox, unit=stack.unit**2),
        psf=result.psf,
        obs_info=stack.obs_info,
        detector=stack.detector,
        band=stack.band,
    )
    path = tmp_path / "visit_image.fits"
    exposure.write(str(path))
    read = VisitImage.read(path)
    assert isinstance(read.psf, PiffWrapper)
    for x, y in synthetic.points():
        before = result.psf.compute_kernel_image(x=x, y=y)
        after = read.psf.compute_kernel_image(x=x, y=y)
        assert after.bbox == before.bbox
        np.testing.assert_allclose(after.array, before.array, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", ["delta", "line", "zero"])
def test_moments_of_degenerate_kernels(shape: str) -> None:
    """A PSF model fitted to too few stars can be a kernel HSM cannot fit
    (it raised "singular moment matrix" from measurement): the moments fall
    back to the plain ones, at least a pixel wide, or NaN for no light."""
    from lsst.obs.vista.psf_shape import kernel_moments

    kernel = np.zeros((21, 21))
    if shape == "delta":
        kernel[10, 10] = 1.0
    elif shape == "line":
        kernel[10, :] = 1.0
    ixx, iyy, ixy = kernel_moments(kernel)
    if shape == "zero":
        assert np.isnan(ixx) and np.isnan(iyy)
    else:
        assert ixx >= 1 / 12 and iyy >= 1 / 12 and np.isfinite(ixy)
        assert (ixx > 30) == (shape == "line")
