"""The synthetic VIRCAM generator: real-looking files, exact truth.

Small images (256-pixel detectors, two detectors) keep the module at about
20 seconds; every check compares the written files with the truth sidecars or
with the camera description, so that a wrong noise term, weight, header or
WCS makes them fail.
"""

import dataclasses
import re
import subprocess
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
from astro_metadata_translator import ObservationInfo
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS, FITSFixedWarning

from isr_support import read_confidence, read_stack, vircam_config
from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.casu_headers import read_header_dump
from lsst.obs.vista.sim import (
    REFERENCE_EPOCH,
    SOURCE_COLUMNS,
    SimulatedStack,
    SimulationConfig,
    read_source_truth,
    stack_headers,
    true_psf_fwhm,
    variable_magnitude_offset,
    write_pawprint_stack,
    write_reference_catalog,
    write_tile,
    write_twomass_catalog,
)
from lsst.obs.vista.sim._geometry import jitter
from lsst.obs.vista.sim._psf import exposure_psf_variance

# Two configurations: the defaults of the template Z-band stack, and a
# Y-band stack like the real 2017 VIDEO one (DIT 30 s, NDIT 2, 8 jitters),
# which exercises NDIT and another filter.  Source densities are raised so
# that 256-pixel detectors hold a few dozen sources and saturated stars.
DENSE = {"star_density": 15.0, "galaxy_density": 10.0, "bright_star_density": 1.0}
Z_CONFIG = SimulationConfig(size=256, detectors=(1, 2), **DENSE)
Y_CONFIG = SimulationConfig(
    size=256,
    detectors=(1, 2),
    n_exposures=8,
    filter_name="Y",
    dit=30.0,
    ndit=2,
    sky_level=1100.0,
    magzpt=23.314,
    seeing=2.2,
    seed=7,
    **DENSE,
)


def wcs_of(header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def merged(primary, extension):
    header = primary.copy()
    header.update(extension)
    return header


def clipped_std(values):
    return sigma_clipped_stats(values, sigma=5.0, maxiters=5)[2]


@pytest.fixture(scope="module")
def tile_run(tmp_path_factory):
    """Six Z-band stacks (one OB) and their tile."""
    outdir = tmp_path_factory.mktemp("tile_run")
    stacks = [write_pawprint_stack(outdir, index, Z_CONFIG) for index in range(6)]
    tile = write_tile(outdir, stacks, Z_CONFIG)
    return outdir, stacks, tile


@pytest.fixture(scope="module")
def y_stack(tmp_path_factory):
    return write_pawprint_stack(tmp_path_factory.mktemp("y_stack"), 3, Y_CONFIG)


@pytest.fixture(params=["Z", "Y"])
def stack(request, tile_run, y_stack):
    """A stack and its configuration."""
    if request.param == "Z":
        return tile_run[1][0], Z_CONFIG
    return y_stack, Y_CONFIG


class Detector:
    """One detector of a written stack with its truth."""

    def __init__(self, stack: SimulatedStack, detector_id: int):
        name = f"DET1.CHIP{detector_id}"
        with fits.open(stack.stack) as f:
            self.header = f[name].header
            self.image = f[name].data.astype(np.float64)
        self.confidence = fits.getdata(stack.confidence, name).astype(int)
        with fits.open(stack.truth) as truth:
            self.variance = truth[f"VARIANCE.{name}"].data.astype(np.float64)
            self.model = truth[f"MODEL.{name}"].data.astype(np.float64)
            self.covariance = truth[f"COVAR.{name}"].data.astype(np.float64)
            self.saturated = truth[f"NSAT.{name}"].data
            self.truth_header = truth[f"VARIANCE.{name}"].header
            self.truth_primary = truth[0].header
        self.catalog = fits.getdata(stack.catalog, name)
        self.sky = self.truth_header["SKYTRUE"]
        with np.errstate(invalid="ignore"):
            self.residual = (self.image - self.model) / np.sqrt(self.variance)
            self.sky_pixels = (self.confidence > 0) & (self.model - self.sky < 0.1 * np.sqrt(self.variance))

    def sky_at(self, low, high):
        return self.sky_pixels & (self.confidence >= low) & (self.confidence <= high)


# --- Files ------------------------------------------------------------------


def test_file_names_and_layout(tile_run):
    outdir, stacks, tile = tile_run
    for stack in stacks:
        assert re.fullmatch(r"v\d{8}_\d{5}_st", stack.stem)
        assert stack.stack.name == f"{stack.stem}.fit"
        assert stack.confidence.name == f"{stack.stem}_conf.fit"
        assert stack.catalog.name == f"{stack.stem}_cat.fits"
        assert stack.truth == outdir / "truth" / f"{stack.stem}_truth.fits"
        date_obs = Time(fits.getheader(stack.stack)["DATE-OBS"], scale="utc")
        night = (date_obs - TimeDelta(12 * u.hour)).strftime("%Y%m%d")
        assert stack.stem.startswith(f"v{night}_")
    assert tile.stem == f"{stacks[0].stem}_tl"
    assert tile.tile.name == f"{stacks[0].stem}_tl.fit"
    assert tile.confidence.name == f"{stacks[0].stem}_tl_conf.fit"
    assert tile.catalog.name == f"{stacks[0].stem}_tl_cat.fits"
    # A directory ingest of OUTDIR sees only products, no truth, no leftovers.
    assert sorted(p.name for p in outdir.iterdir() if p.is_file()) == sorted(
        [p.name for s in stacks for p in (s.stack, s.confidence, s.catalog)]
        + [tile.tile.name, tile.confidence.name, tile.catalog.name]
    )
    assert len(list((outdir / "truth").iterdir())) == 7


def test_stack_hdus(stack):
    stack, config = stack
    names = [f"DET1.CHIP{d}" for d in config.detectors]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad checksum warns
        with fits.open(stack.stack, do_not_scale_image_data=True, checksum=True) as f:
            assert [h.name for h in f[1:]] == names
            for hdu in f[1:]:
                assert hdu.header["BITPIX"] == 32
                assert hdu.data.dtype.kind == "i"
                assert hdu.header["BSCALE"] == config.bscale
                assert hdu.header.get("BZERO", 0) == 0
                assert hdu.data.shape[0] > config.size and hdu.data.shape[1] > config.size
        with fits.open(stack.confidence, checksum=True) as f:
            assert [h.name for h in f[1:]] == names
            for hdu in f[1:]:
                assert hdu.header["BITPIX"] == 16
                assert np.median(hdu.data[hdu.data > 0]) == pytest.approx(100, abs=2)
                assert (hdu.data == 0).sum() > 0
                assert 50 < hdu.data.max() < 300
                assert hdu.header["CTYPE1"] == "RA---ZPN"
        with fits.open(stack.catalog, checksum=True) as f:
            template = read_header_dump("2_cell111")
            expected = [template[f"TTYPE{n}"] for n in range(1, 81)]
            assert [h.name for h in f[1:]] == names
            for hdu in f[1:]:
                assert hdu.columns.names == expected
                assert [c.format for c in hdu.columns] == ["E"] * 80
                assert len(hdu.data) > 0
    for path in (stack.stack, stack.confidence, stack.catalog, stack.truth):
        with fits.open(path) as f:
            f.verify("exception")
    # Readers see the integers times BSCALE.
    raw = fits.getdata(stack.stack, 1, do_not_scale_image_data=True)
    scaled = fits.getdata(stack.stack, 1)
    np.testing.assert_array_equal(scaled, raw * config.bscale)


def test_headers_are_the_real_ones(stack):
    stack, config = stack
    # The real cards in their order; only SIMULATE and the checksums added.
    added = ("SIMULATE", "CHECKSUM", "DATASUM")
    primary = fits.getheader(stack.stack, 0)
    template = read_header_dump("4_cell7")
    assert [k for k in primary if k not in added] == [k for k in template if k]
    assert primary["SIMULATE"] is True
    assert primary["ESO INS FILT1 NAME"] == config.filter_name
    assert primary["NJITTER"] == config.n_exposures
    extension = fits.getheader(stack.stack, 1)
    provenance_cards = re.compile(r"PROV\d{4}$")
    template = read_header_dump("4_cell8")
    assert [k for k in extension if k not in added and not provenance_cards.match(k)] == [
        k for k in template if k and k not in added and not provenance_cards.match(k)
    ]
    assert extension["EXTNAME"] == "DET1.CHIP1"
    assert extension["ESO DET CHIP NO"] == 1
    assert extension["NICOMB"] == config.n_exposures
    assert extension["EXPTIME"] == config.dit
    assert extension["ESO DET NDIT"] == config.ndit
    assert extension["DRIBBLE"] == "bilinear"
    assert extension["CIR_CPM"] == f"{stack.stem}_conf.fit[1]"
    assert extension["PROV0000"] == f"{stack.stem}.fit[1]: formed from Bi-linear interpolation of:"
    provenance = [extension[f"PROV{n:04d}"] for n in range(1, config.n_exposures + 1)]
    assert f"PROV{config.n_exposures + 1:04d}" not in extension
    first = int(stack.stem.split("_")[1])
    night = stack.stem.split("_")[0]
    assert provenance == [f"{night}_{first + k:05d}.fit[1]" for k in range(config.n_exposures)]
    assert extension["MAGZPT"] == config.magzpt
    for key in ("CTYPE1", "CTYPE2", "CD1_1", "CD2_2", "PV2_3", "PV2_5"):
        assert extension[key] == read_header_dump("4_cell8")[key]


def test_stack_headers_match_the_files(tile_run):
    _, stacks, _ = tile_run
    for stack in stacks[:2]:
        primary, extensions = stack_headers(stack.index, Z_CONFIG)
        assert set(extensions) == set(Z_CONFIG.detectors)
        written = fits.getheader(stack.stack, 0)
        checksums = ("CHECKSUM", "DATASUM")
        assert [(c.keyword, c.value) for c in primary.cards] == [
            (c.keyword, c.value) for c in written.cards if c.keyword not in checksums
        ]
        for detector_id, header in extensions.items():
            written = fits.getheader(stack.stack, f"DET1.CHIP{detector_id}")
            differing = {k for k in header if k not in ("COMMENT", "HISTORY") and header[k] != written.get(k)}
            assert differing <= {"SKYNOISE"}
            assert set(written) - set(header) == set(checksums)
            assert header["SKYNOISE"] == pytest.approx(written["SKYNOISE"], rel=0.05)


def test_headers_translate(tile_run, y_stack):
    outdir, stacks, tile = tile_run
    ids = set()
    groups = set()
    for stack in [*stacks, y_stack]:
        primary = fits.getheader(stack.stack, 0)
        config = Z_CONFIG if stack in stacks else Y_CONFIG
        for path in (stack.stack, stack.confidence, stack.catalog):
            for detector_id in config.detectors:
                header = merged(primary, fits.getheader(path, f"DET1.CHIP{detector_id}"))
                info = ObservationInfo(header, filename=path.name, pedantic=True)
                assert info.ext_product == "pawprint_stack"
                assert info.ext_ncombine == config.n_exposures
                assert info.physical_filter == f"VIRCAM-{config.filter_name}"
                assert info.detector_num == detector_id
                assert info.has_simulated_content
                assert info.exposure_time.to_value(u.s) == pytest.approx(
                    config.dit * config.ndit * config.n_exposures
                )
                assert info.ext_flux_exposure_time == config.dit
                assert info.boresight_airmass < 2.0
        # The translator's exposure ID: UTC date, second of the day, product.
        begin = Time(primary["DATE-OBS"], scale="utc").datetime
        second = begin.hour * 3600 + begin.minute * 60 + begin.second
        assert info.exposure_id == int(begin.strftime("%Y%m%d")) * 1_000_000 + second * 10 + 1
        ids.add(info.exposure_id)
        if stack in stacks:
            groups.add(info.exposure_group)
    assert len(ids) == 7  # one per stack
    assert len(groups) == 1  # one offset sequence
    primary = fits.getheader(tile.tile, 0)
    for path in (tile.tile, tile.confidence, tile.catalog):
        header = merged(primary, fits.getheader(path, 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = ObservationInfo(header, filename=path.name)
        assert info.ext_product == "tile"
        assert info.ext_ncombine == 6
        assert info.has_simulated_content
        assert info.exposure_id not in ids
        assert info.exposure_id == min(ids) + 1  # the first stack's, as a tile
        assert info.exposure_group in groups
        assert info.exposure_time.to_value(u.s) == pytest.approx(6 * 9 * Z_CONFIG.dit)


# --- Geometry ---------------------------------------------------------------


def test_detectors_share_the_optical_axis(stack):
    stack, config = stack
    camera = Vircam.camera()
    headers = {d: fits.getheader(stack.stack, f"DET1.CHIP{d}") for d in config.detectors}
    one, two = (headers[d] for d in config.detectors[:2])
    assert (one["CRVAL1"], one["CRVAL2"]) == (two["CRVAL1"], two["CRVAL2"])
    per_mm = config.size / 2048 / camera.pixel_size
    for d, header in headers.items():
        centre = (0.5 * (header["NAXIS1"] + 1), 0.5 * (header["NAXIS2"] + 1))
        detector = camera.detectors[d]
        assert header["CRPIX1"] == pytest.approx(centre[0] - detector.focal_plane_x * per_mm)
        assert header["CRPIX2"] == pytest.approx(centre[1] - detector.focal_plane_y * per_mm)
    # On the sky, chip 2 lies along +x of chip 1 by the detector pitch.
    ra, dec = wcs_of(two).pixel_to_world_values(0.5 * (two["NAXIS1"] - 1), 0.5 * (two["NAXIS2"] - 1))
    x, y = wcs_of(one).world_to_pixel_values(ra, dec)
    pitch = (camera.detectors[2].focal_plane_x - camera.detectors[1].focal_plane_x) * per_mm
    assert x - 0.5 * (one["NAXIS1"] - 1) == pytest.approx(pitch, abs=0.5)
    assert y - 0.5 * (one["NAXIS2"] - 1) == pytest.approx(0.0, abs=0.5)


def test_catalogue_positions_land_on_the_sources(stack):
    stack, config = stack
    for detector_id in config.detectors:
        detector = Detector(stack, detector_id)
        catalog = detector.catalog
        ra, dec = np.degrees(catalog["RA"].astype(float)), np.degrees(catalog["DEC"].astype(float))
        x, y = wcs_of(detector.header).world_to_pixel_values(ra, dec)
        np.testing.assert_allclose(x, catalog["X_coordinate"] - 1, atol=0.05)
        np.testing.assert_allclose(y, catalog["Y_coordinate"] - 1, atol=0.05)
        table = WCS(fits.getheader(stack.catalog, f"DET1.CHIP{detector_id}"), keysel=["pixel"], colsel=[3, 5])
        tx, ty = table.wcs_world2pix(ra, dec, 1)
        np.testing.assert_allclose(tx, catalog["X_coordinate"], atol=0.05)
        np.testing.assert_allclose(ty, catalog["Y_coordinate"], atol=0.05)
        # The noiseless image has each isolated star where the catalogue
        # says, with the SEEING of the header and the catalogue's flux.
        moments = []
        for row in _isolated_stars(catalog, detector.model.shape):
            box, xx, yy = _box(detector.model - detector.sky, row)
            if _box(detector.confidence, row)[0].min() < 80 or _box(detector.saturated, row)[0].any():
                continue  # inputs missing (jitter edge, bad patch) or clipped
            flux = box.sum()
            cx, cy = (box * xx).sum() / flux, (box * yy).sum() / flux
            assert cx == pytest.approx(row["X_coordinate"] - 1, abs=0.02)
            assert cy == pytest.approx(row["Y_coordinate"] - 1, abs=0.02)
            assert flux == pytest.approx(row["Isophotal_flux"], rel=0.01)
            moments.append(0.5 * (box * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / flux)
        assert moments, "no isolated star to measure"
        sigma = detector.header["SEEING"] / (2 * np.sqrt(2 * np.log(2)))
        assert np.sqrt(np.median(moments)) == pytest.approx(sigma, rel=0.01)


def _isolated_stars(catalog, shape, half=7):
    """Stars whose box holds no other source above 2% of their flux."""
    x, y = catalog["X_coordinate"] - 1, catalog["Y_coordinate"] - 1
    flux = catalog["Isophotal_flux"]
    for i, row in enumerate(catalog):
        distance = np.hypot(x - x[i], y - y[i])
        neighbours = (distance < 3 * half) & (flux > 0.02 * flux[i])
        neighbours[i] = False
        inside = half <= x[i] < shape[1] - half - 1 and half <= y[i] < shape[0] - half - 1
        if row["Classification"] == -1 and inside and flux[i] > 300 and not neighbours.any():
            yield row


def _box(image, row, half=7):
    ix, iy = int(round(row["X_coordinate"] - 1)), int(round(row["Y_coordinate"] - 1))
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    return image[iy - half : iy + half + 1, ix - half : ix + half + 1], xx, yy


# --- Truth ------------------------------------------------------------------


def test_residuals_are_unit_normal(stack):
    stack, config = stack
    for detector_id in config.detectors:
        detector = Detector(stack, detector_id)
        sky = detector.sky_at(95, 105)
        assert sky.sum() > 10000
        assert clipped_std(detector.residual[sky]) == pytest.approx(1.0, abs=0.03)
        assert np.mean(detector.residual[sky]) == pytest.approx(0.0, abs=0.03)
        data = detector.confidence > 0
        assert clipped_std(detector.residual[data]) == pytest.approx(1.0, abs=0.03)
        # Where sources dominate the noise, their Poisson term is right too.
        with np.errstate(invalid="ignore"):
            bright = data & (detector.model - detector.sky > 20 * np.sqrt(detector.variance))
            bright &= detector.saturated == 0
        assert bright.sum() > 50
        assert np.std(detector.residual[bright]) == pytest.approx(1.0, abs=0.15)
        # No data means confidence 0 and no truth.
        assert np.all(np.isnan(detector.variance[~data]))
        assert np.all(detector.image[~data] == 0)


def test_sky_noise_card(stack):
    stack, config = stack
    camera = Vircam.camera()
    for detector_id in config.detectors:
        detector = Detector(stack, detector_id)
        header = detector.header
        sky = detector.sky_at(95, 105)
        assert header["SKYNOISE"] == pytest.approx(np.sqrt(np.median(detector.variance[sky])), rel=0.03)
        assert header["SKYLEVEL"] == detector.sky
        assert np.median(detector.image[sky]) == pytest.approx(header["SKYLEVEL"], abs=0.2)
        # From first principles: camera.yaml gain and read noise, the header's
        # GAINCOR, NDIT and NICOMB, and the jitter fractions of the truth.
        noise = camera.detectors[detector_id]
        gain_eff = noise.gain * header["ESO DET NDIT"] / header["GAINCOR"]
        read = header["GAINCOR"] * noise.read_noise / noise.gain / np.sqrt(header["ESO DET NDIT"])
        single = header["SKYLEVEL"] / gain_eff + read**2
        n = header["NICOMB"]
        fractions = np.array(
            [[detector.truth_primary[f"JIT{axis}{k:02d}"] % 1.0 for axis in "XY"] for k in range(1, n + 1)]
        )
        squared_weights = np.prod(fractions**2 + (1 - fractions) ** 2, axis=1).sum()
        predicted = np.sqrt(single * squared_weights / n**2 + config.bscale**2 / 12)
        assert header["SKYNOISE"] == pytest.approx(predicted, rel=0.04)


def test_variance_follows_confidence(stack):
    stack, config = stack
    for detector_id in config.detectors:
        detector = Detector(stack, detector_id)
        half = np.median(detector.variance[detector.sky_at(45, 55)])
        full = np.median(detector.variance[detector.sky_at(95, 105)])
        assert 1.6 < half / full < 2.4


def test_neighbour_noise_is_correlated(stack):
    stack, config = stack
    detector = Detector(stack, config.detectors[0])
    ny, nx = detector.image.shape
    chosen = detector.sky_at(95, 105)
    for plane, (dx, dy) in enumerate(((1, 0), (0, 1), (1, 1), (1, -1))):
        rows = slice(max(0, -dy), ny - max(0, dy))
        partner_rows = slice(max(0, dy), ny - max(0, -dy))
        a = detector.residual[rows, : nx - dx]
        b = detector.residual[partner_rows, dx:]
        both = chosen[rows, : nx - dx] & chosen[partner_rows, dx:]
        empirical = np.corrcoef(a[both], b[both])[0, 1]
        true = np.mean(
            detector.covariance[plane][rows, : nx - dx][both]
            / np.sqrt(detector.variance[rows, : nx - dx][both] * detector.variance[partner_rows, dx:][both])
        )
        assert true > 0.02
        assert empirical == pytest.approx(true, abs=0.02)
    assert np.nanmin(detector.covariance) >= 0


def test_saturated_cores(tile_run):
    _, stacks, _ = tile_run
    quantisation = Z_CONFIG.bscale**2 / 12
    exact_pixels = 0
    for stack in stacks:
        for detector_id in Z_CONFIG.detectors:
            detector = Detector(stack, detector_id)
            core = detector.saturated == Z_CONFIG.n_exposures
            # Values of saturated inputs are the saturation level over the
            # flat field (0.5 - 2).
            assert np.all(detector.image[core] < 2 * detector.truth_header["SATNORM"])
            assert np.all(detector.image[core] > 0.5 * detector.truth_header["SATNORM"])
            # Pixels whose every input saturated are exact: only the rounding
            # is left of their variance.
            exact = core & (np.abs(detector.variance / quantisation - 1) < 1e-4)
            assert np.all(np.abs(detector.image - detector.model)[exact] <= Z_CONFIG.bscale / 2 + 1e-3)
            exact_pixels += exact.sum()
            unsaturated = (detector.saturated == 0) & (detector.confidence > 0)
            assert np.all(detector.variance[unsaturated] > 10 * quantisation)
    assert exact_pixels > 0


def test_detectors_are_independent_of_the_selection(tmp_path, tile_run):
    _, stacks, _ = tile_run
    config = SimulationConfig(size=256, detectors=(2,), **DENSE)
    alone = write_pawprint_stack(tmp_path, 0, config)
    np.testing.assert_array_equal(
        fits.getdata(alone.stack, "DET1.CHIP2"), fits.getdata(stacks[0].stack, "DET1.CHIP2")
    )
    np.testing.assert_array_equal(
        fits.getdata(alone.truth, "VARIANCE.DET1.CHIP2"), fits.getdata(stacks[0].truth, "VARIANCE.DET1.CHIP2")
    )


def test_monte_carlo_of_the_stacking():
    """Many noise realisations of one small stack reproduce the truth's
    model, variance and covariances pixel by pixel."""
    from lsst.obs.vista.sim._geometry import jitter
    from lsst.obs.vista.sim._stack import DetectorNoise, ExposureMaker, StackAccumulator, input_confidence

    config = SimulationConfig(size=64, detectors=(1,), jitter=3.0)
    confidence = input_confidence(1, config)
    maker = ExposureMaker(DetectorNoise.for_detector(1, config), confidence)
    pattern = jitter(0, config)
    yy, xx = np.mgrid[:64, :64]
    level = (620 + 1e5 * np.exp(-((xx - 30.3) ** 2 + (yy - 33.7) ** 2) / 8)).astype(np.float32)
    realisations = 400
    images = []
    for realisation in range(realisations):
        accumulator = StackAccumulator(pattern.shape, confidence)
        for k, origin in enumerate(pattern.offsets):
            accumulator.add(origin, maker.expose(level, np.random.default_rng([realisation, k])))
        truth = accumulator.finish(0.01)
        images.append(truth.image)
    images = np.array(images)
    data = truth.confidence > 0
    assert truth.saturated.max() > 0
    ratio = images.var(axis=0, ddof=1)[data] / truth.variance[data]
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    assert ratio.std() == pytest.approx(np.sqrt(2 / realisations), rel=0.15)
    offset = (images.mean(axis=0) - truth.model)[data] / np.sqrt(truth.variance[data] / realisations)
    assert np.std(offset) == pytest.approx(1.0, abs=0.1)
    deviations = images - images.mean(axis=0)
    ny, nx = pattern.shape
    for plane, (dx, dy) in enumerate(((1, 0), (0, 1), (1, 1), (1, -1))):
        rows = slice(max(0, -dy), ny - max(0, dy))
        partner_rows = slice(max(0, dy), ny - max(0, -dy))
        empirical = (deviations[:, rows, : nx - dx] * deviations[:, partner_rows, dx:]).sum(0) / (
            realisations - 1
        )
        true = truth.covariance[plane][rows, : nx - dx]
        both = data[rows, : nx - dx] & data[partner_rows, dx:]
        scale = np.sqrt(truth.variance[rows, : nx - dx] * truth.variance[partner_rows, dx:] / realisations)
        z = ((empirical - true) / scale)[both]
        assert abs(z.mean()) < 0.1
        assert 0.9 < z.std() < 1.2


# --- Tile -------------------------------------------------------------------


def test_tile_files(tile_run):
    _, stacks, tile = tile_run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(tile.tile, do_not_scale_image_data=True, checksum=True) as f:
            assert len(f) == 2
            header = f[1].header
            assert f[1].data.dtype.kind == "i"
        with fits.open(tile.confidence, checksum=True) as f:
            assert len(f) == 2
            confidence = f[1].data
        with fits.open(tile.catalog, checksum=True) as f:
            assert len(f) == 2
            assert len(f[1].columns) == 80
    for path in (tile.tile, tile.confidence, tile.catalog, tile.truth):
        with fits.open(path) as f:
            f.verify("exception")
    assert header["CTYPE1"] == "RA---TAN"
    assert header["BSCALE"] == Z_CONFIG.tile_bscale
    assert header["CIR_CPM"] == f"{tile.stem}_conf.fit"
    assert header["PROV0000"] == f"{tile.stem}.fit: formed from Bi-linear interpolation of:"
    assert [header[f"PROV{n:04d}"] for n in range(1, 7)] == [f"{s.stem}.fit" for s in stacks]
    assert "NICOMB" not in header
    assert confidence.dtype.kind == "i" and confidence.dtype.itemsize == 2
    assert np.median(confidence[confidence > 0]) == pytest.approx(100, abs=2)
    assert (confidence == 0).any() and confidence.max() > 150  # gaps and overlaps


def test_tile_truth(tile_run):
    _, _, tile = tile_run
    image = fits.getdata(tile.tile, 1).astype(np.float64)
    confidence = fits.getdata(tile.confidence, 1).astype(int)
    variance, model, sky = (
        fits.getdata(tile.truth, name).astype(np.float64) for name in ("VARIANCE", "MODEL", "SKY")
    )
    data = confidence > 0
    residual = (image - model)[data] / np.sqrt(variance[data])
    assert clipped_std(residual) == pytest.approx(1.0, abs=0.03)
    with np.errstate(invalid="ignore"):
        sky_pixels = data & (model - sky < 0.1 * np.sqrt(variance)) & (np.abs(confidence - 100) <= 5)
    catalog = fits.getheader(tile.catalog, 1)
    # The second resampling's phase, hence its variance reduction, drifts
    # across the tile: SKYNOISE is the robust scatter of that mixture.
    typical = np.sqrt(variance[sky_pixels])
    assert catalog["SKYNOISE"] == pytest.approx(np.median(typical), rel=0.06)
    assert np.percentile(typical, 90) > 1.1 * np.percentile(typical, 10)
    # The catalogue's sources are where the tile's WCS puts them.
    table = fits.getdata(tile.catalog, 1)
    ra, dec = np.degrees(table["RA"].astype(float)), np.degrees(table["DEC"].astype(float))
    x, y = wcs_of(fits.getheader(tile.tile, 1)).world_to_pixel_values(ra, dec)
    np.testing.assert_allclose(x, table["X_coordinate"] - 1, atol=0.05)
    centroids = []
    for row in _isolated_stars(table, model.shape):
        box, xx, yy = _box(model - sky, row)
        if np.all(np.isfinite(box)):
            centroids.append((box * xx).sum() / box.sum() - (row["X_coordinate"] - 1))
    assert len(centroids) > 3
    assert np.max(np.abs(centroids)) < 0.05


def test_tile_needs_one_offset_sequence(tmp_path, tile_run):
    _, stacks, _ = tile_run
    with pytest.raises(ValueError, match="6 pawprint stacks"):
        write_tile(tmp_path, stacks[:5], Z_CONFIG)
    with pytest.raises(ValueError, match="offsets 1-6"):
        write_tile(tmp_path, [stacks[0], *stacks[:5]], Z_CONFIG)
    other = SimulationConfig(size=256, detectors=(1, 2), seed=2)
    with pytest.raises(ValueError, match="another seed"):
        write_tile(tmp_path, stacks, other)


def test_configuration_is_checked():
    for bad in (
        {"detectors": (17,)},
        {"detectors": (2, 1)},
        {"filter_name": "R"},
        {"size": 32},
        {"seed": -1},
        {"psf_variation": -0.3},  # FWHM 1.4 at the corners
    ):
        with pytest.raises(ValueError):
            SimulationConfig(**bad)
    assert SimulationConfig(detectors=[3, 4]).detectors == (3, 4)


# --- Command line -----------------------------------------------------------


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "lsst.obs.vista.sim", *args], capture_output=True, text=True, timeout=300
    )


def test_command_line_stack(tmp_path):
    refcat = tmp_path / "ref" / "gaia.fits"
    result = _run(
        str(tmp_path), "--stacks", "1", "--size", "128", "--detectors", "1,2", "--refcat", str(refcat),
        "--psf-variation", "0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"stack 1/1: v\d{8}_\d{5}_st\.fit \(2 detectors, [\d.]+ s\)\n"
        rf"reference catalogue: {re.escape(str(refcat))} \(\d+ stars\)\n",
        result.stdout,
    )
    assert len(Table.read(refcat)) > 0
    (stack,) = tmp_path.glob("*_st.fit")
    with fits.open(stack) as f:
        assert [h.name for h in f[1:]] == ["DET1.CHIP1", "DET1.CHIP2"]
        assert f[1].data.shape == (fits.getheader(stack, 1)["NAXIS2"], fits.getheader(stack, 1)["NAXIS1"])
    truth = tmp_path / "truth" / f"{stack.stem}_truth.fits"
    assert fits.getheader(truth, 0)["PSFVAR"] == 0.1
    assert read_source_truth(truth, 2).meta["PSFFW11"] > read_source_truth(truth, 2).meta["PSFFWCEN"]


def test_command_line_tile(tmp_path):
    result = _run(
        str(tmp_path), "--stacks", "6", "--size", "128", "--detectors", "1,2", "--tile", "--seed", "3"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and lines[-1].startswith("tile: ")
    assert len(list(tmp_path.glob("*_st_tl*"))) == 3


def test_command_line_help_and_errors(capsys):
    from lsst.obs.vista.sim.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in "--stacks --index-step --size --seed --tile --detectors --refcat --psf-variation".split():
        assert option in text
    bad_lines = (
        ["out", "--stacks", "5", "--tile"],
        ["out", "--stacks", "1", "--detectors", "0"],
        ["out", "--stacks", "6", "--tile", "--index-step", "2"],
        ["out", "--stacks", "2", "--index-step", "0"],
    )
    for bad in bad_lines:
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2


def test_command_line_index_step(tmp_path):
    """--index-step 2 writes the stacks of indices 0 and 2 (file numbers 9 exposures apart per
    index) in one run, as two runs of one stack each would."""
    from lsst.obs.vista.sim.__main__ import main

    common = ["--size", "128", "--detectors", "1", "--seed", "3"]
    assert main([str(tmp_path / "one_run"), "--stacks", "2", "--index-step", "2", *common]) == 0
    for index in (0, 2):
        assert main([str(tmp_path / "two_runs"), "--stacks", "1", "--first-index", str(index), *common]) == 0
    names = sorted(path.name for path in (tmp_path / "one_run").glob("*_st.fit"))
    assert names == ["v20120924_00100_st.fit", "v20120924_00118_st.fit"]
    assert names == sorted(path.name for path in (tmp_path / "two_runs").glob("*_st.fit"))
    for name in names:
        np.testing.assert_array_equal(
            fits.getdata(tmp_path / "one_run" / name, 1), fits.getdata(tmp_path / "two_runs" / name, 1)
        )


# --- Truth for the processing after isr --------------------------------------

VARYING_CONFIG = SimulationConfig(size=256, detectors=(1,), psf_variation=0.25, **DENSE)

# Names and FITS types of the Gaia chunks' columns
# (tests/data/decam_cp/testcase6/reference/gaia-chunk-03559.fits).
GAIA_CHUNK_COLUMNS = [
    ("source_id", "K"), ("ra", "D"), ("dec", "D"), ("ra_error", "E"), ("dec_error", "E"),
    ("phot_g_mean_mag", "E"), ("phot_g_mean_flux_over_error", "E"), ("phot_g_n_obs", "I"),
    ("phot_bp_mean_mag", "E"), ("phot_bp_mean_flux_over_error", "E"), ("phot_bp_n_obs", "I"),
    ("phot_rp_mean_mag", "E"), ("phot_rp_mean_flux_over_error", "E"), ("phot_rp_n_obs", "I"),
    ("astrometric_weight_al", "E"), ("astrometric_n_obs_al", "I"), ("astrometric_n_good_obs_al", "I"),
    ("astrometric_excess_noise", "E"), ("astrometric_excess_noise_sig", "E"), ("duplicated_source", "L"),
    ("ref_epoch", "E"), ("parallax", "E"), ("parallax_error", "E"), ("pmra", "E"), ("pmra_error", "E"),
    ("pmdec", "E"), ("pmdec_error", "E"), ("phot_variable_flag", "L"), ("a_g_val", "E"),
    ("e_bp_min_rp_val", "E"), ("phot_bp_rp_excess_factor", "E"), ("astrometric_sigma5d_max", "E"),
    ("astrometric_params_solved", "E"),
]  # fmt: skip


@pytest.fixture(scope="module")
def varying_stack(tmp_path_factory):
    """One detector whose PSF FWHM grows by 25% from the centre to the corners."""
    return write_pawprint_stack(tmp_path_factory.mktemp("varying"), 0, VARYING_CONFIG)


def _isolated_truth_stars(sources, model, confidence, saturated, half=7):
    """Rows of the source truth whose box holds one unsaturated star with all
    its inputs, and the box of the noiseless model (sky subtracted)."""
    ny, nx = model.shape
    for row in sources:
        ix, iy = int(round(row["x"])), int(round(row["y"]))
        if row["is_galaxy"] or row["flux"] < 300 or not (half <= ix < nx - half and half <= iy < ny - half):
            continue
        distance = np.hypot(sources["x"] - row["x"], sources["y"] - row["y"])
        if np.any((distance > 0) & (distance < 3 * half) & (sources["flux"] > 0.02 * row["flux"])):
            continue
        box = (slice(iy - half, iy + half + 1), slice(ix - half, ix + half + 1))
        if confidence[box].min() < 80 or saturated[box].any():
            continue
        yy, xx = np.mgrid[box]
        yield row, model[box], xx, yy


def test_source_truth_is_where_the_flux_is(varying_stack):
    detector = Detector(varying_stack, 1)
    sources = read_source_truth(varying_stack.truth, 1)
    assert set(sources.colnames) == set(SOURCE_COLUMNS)
    ny, nx = detector.image.shape
    assert np.all((sources["x"] >= -0.5) & (sources["x"] < nx - 0.5))
    assert np.all((sources["y"] >= -0.5) & (sources["y"] < ny - 0.5))
    # The CASU catalogue lists the same sources, those on data.
    on_data = sources[sources["confidence"] > 0]
    assert len(on_data) == len(detector.catalog)
    np.testing.assert_allclose(
        np.sort(on_data["x"] + 1), np.sort(detector.catalog["X_coordinate"]), atol=1e-4
    )
    ratios = []
    for row, box, xx, yy in _isolated_truth_stars(
        sources, detector.model - detector.sky, detector.confidence, detector.saturated
    ):
        flux = box.sum()
        cx, cy = (box * xx).sum() / flux, (box * yy).sum() / flux
        assert cx == pytest.approx(row["x"], abs=0.02)
        assert cy == pytest.approx(row["y"], abs=0.02)
        assert flux == pytest.approx(row["flux"], rel=0.01)
        # The true FWHM is that of the noiseless star's second moments (to
        # the flat-field weighting of the inputs and faint neighbours).
        moment = 0.5 * (box * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / flux
        ratios.append(2 * np.sqrt(2 * np.log(2)) * np.sqrt(moment) / row["psf_fwhm"])
    assert len(ratios) >= 5
    assert np.max(np.abs(np.array(ratios) - 1)) < 0.01
    assert np.median(ratios) == pytest.approx(1.0, abs=0.002)


def test_true_psf_is_a_point_source_through_the_stacking():
    """A noiseless point source rendered with each exposure's PSF and
    accumulated as the stacks are, with equal flat fields, has exactly the
    second moments of `true_psf_fwhm`."""
    from lsst.obs.vista.sim._render import Scene, render
    from lsst.obs.vista.sim._stack import Exposure, StackAccumulator

    config = VARYING_CONFIG
    pattern = jitter(0, config)
    fwhm_per_sigma = 2 * np.sqrt(2 * np.log(2))
    for x, y in ((140.3, 150.7), (40.2, 40.9), (250.1, 250.6), (60.5, 200.2)):
        accumulator = StackAccumulator(pattern.shape, np.full((config.size, config.size), 100, np.int16))
        for origin in pattern.offsets:
            variance = exposure_psf_variance(config, np.array([x - origin[0]]), np.array([y - origin[1]]))
            scene = Scene.from_sources(
                np.array([x]), np.array([y]), np.array([1e6]), np.zeros(1), np.ones(1), np.zeros(1), variance
            )
            level = render(scene, origin, config.size).astype(np.float32)
            accumulator.add(origin, Exposure(level, level, np.zeros_like(level), np.zeros(level.shape, bool)))
        model = accumulator.finish(0.01).model
        iy, ix = round(y), round(x)
        box = np.nan_to_num(model[iy - 10 : iy + 11, ix - 10 : ix + 11].astype(float))
        yy, xx = np.mgrid[iy - 10 : iy + 11, ix - 10 : ix + 11]
        flux = box.sum()
        cx, cy = (box * xx).sum() / flux, (box * yy).sum() / flux
        moment = 0.5 * (box * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / flux
        assert (cx, cy) == pytest.approx((x, y), abs=1e-4)
        assert fwhm_per_sigma * np.sqrt(moment) == pytest.approx(
            float(true_psf_fwhm(config, 0, x, y)), rel=1e-4
        )


def test_truth_positions_are_the_isr_pixel_coordinates(varying_stack):
    """The isr's WCS (parent coordinates of a bbox starting at 0) maps the
    true sky positions to the truth's x, y."""
    image = read_stack(varying_stack.stack)
    exposure = VistaIsrTask(config=vircam_config()).run(image, read_confidence(varying_stack.confidence))
    exposure = exposure.outputExposure
    assert (exposure.bbox.x.start, exposure.bbox.y.start) == (0, 0)
    sources = read_source_truth(varying_stack.truth, 1)
    pixels = exposure.sky_projection.sky_to_pixel(SkyCoord(sources["ra"], sources["dec"]))
    np.testing.assert_allclose(pixels.x, sources["x"], atol=1e-3)
    np.testing.assert_allclose(pixels.y, sources["y"], atol=1e-3)
    # The isr's zero point is the truth's but for the extinction term that
    # the header asks for and the simulated fluxes do not carry.
    header = merged(fits.getheader(varying_stack.stack, 0), fits.getheader(varying_stack.stack, 1))
    airmass = exposure.obs_info.boresight_airmass
    assert exposure.metadata["ZERO_POINT_AB"] == pytest.approx(
        sources.meta["ZPAB"] - header["EXTINCT"] * (airmass - 1), abs=1e-9
    )


def test_psf_varies_as_configured(varying_stack):
    config = VARYING_CONFIG
    sources = read_source_truth(varying_stack.truth, 1)
    meta = sources.meta
    # Each exposure's FWHM grows by exactly psf_variation from the centre to
    # the corners; the stack adds the same resampling blur everywhere.
    centre = 0.5 * (config.size - 1)
    variance = exposure_psf_variance(
        config, np.array([centre, 0.0, config.size - 1]), np.array([centre, 0, 0])
    )
    assert np.sqrt(variance[1:] / variance[0]) == pytest.approx(1 + config.psf_variation, abs=1e-12)
    fractions = np.mod(jitter(0, config).offsets, 1.0)
    resampling = np.mean(fractions * (1 - fractions))
    fwhm_per_sigma = 2 * np.sqrt(2 * np.log(2))
    assert meta["PSFFWCEN"] == pytest.approx(fwhm_per_sigma * np.sqrt(variance[0] + resampling), rel=0.01)
    for corner in ("PSFFW00", "PSFFW01", "PSFFW10", "PSFFW11"):
        # The corners that all exposures cover are the jitter inside the
        # detector's, and the resampling blur dilutes the change.
        assert 1 + 0.5 * config.psf_variation < meta[corner] / meta["PSFFWCEN"] < 1 + config.psf_variation
        assert meta[corner] == float(
            true_psf_fwhm(config, 0, meta[f"FULLX{corner[5]}"], meta[f"FULLY{corner[6]}"])
        )
    # The table's value of each source is true_psf_fwhm at its centre.
    np.testing.assert_array_equal(sources["psf_fwhm"], true_psf_fwhm(config, 0, sources["x"], sources["y"]))
    # SEEING is the mean over the detector (at the mean jitter position).
    header = fits.getheader(varying_stack.stack, 1)
    y, x = (
        np.mgrid[: config.size : 4, : config.size : 4]
        + jitter(0, config).offsets.mean(axis=0)[::-1, None, None]
    )
    assert header["SEEING"] == pytest.approx(np.nanmean(true_psf_fwhm(config, 0, x, y)), rel=0.003)
    assert np.isnan(true_psf_fwhm(config, 0, -5.0, -5.0))


def test_constant_psf_truth_is_the_seeing(tile_run):
    _, stacks, _ = tile_run
    sources = read_source_truth(stacks[0].truth, 1)
    seeing = fits.getheader(stacks[0].stack, 1)["SEEING"]
    meta = sources.meta
    interior = (sources["x"] >= meta["FULLX0"]) & (sources["x"] <= meta["FULLX1"])
    interior &= (sources["y"] >= meta["FULLY0"]) & (sources["y"] <= meta["FULLY1"])
    assert interior.sum() > 10
    np.testing.assert_allclose(sources["psf_fwhm"][interior], seeing, atol=1e-6)
    assert meta["PSFVAR"] == 0.0


def test_source_truth_photometry(tile_run, y_stack):
    for stack, config in ((tile_run[1][0], Z_CONFIG), (y_stack, Y_CONFIG)):
        sources = read_source_truth(stack.truth, 1)
        meta = sources.meta
        band = Vircam.camera().filters_by_header_name[config.filter_name].band
        assert meta["VEGA2AB"] == vircam_config().vegaToAb[band]
        assert meta["ZPVEGA"] == pytest.approx(config.magzpt + 2.5 * np.log10(config.dit))
        assert meta["ZPAB"] == pytest.approx(meta["ZPVEGA"] + meta["VEGA2AB"])
        np.testing.assert_allclose(sources["mag_vega"], meta["ZPVEGA"] - 2.5 * np.log10(sources["flux"]))
        np.testing.assert_allclose(sources["mag_ab"] - sources["mag_vega"], meta["VEGA2AB"])
        np.testing.assert_allclose(
            sources["flux_njy"], sources["flux"] * 10 ** (-0.4 * (meta["ZPAB"] - 31.4)), rtol=1e-9
        )
        assert sources["is_galaxy"].any() and not sources["is_galaxy"].all()
        assert fits.getheader(stack.truth, 0)["ZPAB"] == meta["ZPAB"]
        date_obs = Time(fits.getheader(stack.stack, 0)["DATE-OBS"], scale="utc")
        assert Time(meta["DATE-OBS"], scale="utc") == date_obs
        assert meta["EPOCH"] == pytest.approx(date_obs.tcb.jyear, abs=1e-9)


def test_reference_catalog(tmp_path, varying_stack):
    path = tmp_path / "refcat" / "gaia.fits"
    written = write_reference_catalog(VARYING_CONFIG, path)
    with fits.open(path) as hdus:
        hdus.verify("exception")
        assert [(c.name, c.format) for c in hdus[1].columns] == GAIA_CHUNK_COLUMNS
    table = Table.read(path)
    assert len(table) == len(written) > 100
    assert np.all(table["ref_epoch"] == REFERENCE_EPOCH)
    # Every true star of the detector is there, and no galaxy.
    sources = read_source_truth(varying_stack.truth, 1)
    stars = sources[~sources["is_galaxy"]]
    rows = {source_id: k for k, source_id in enumerate(table["source_id"])}
    assert set(stars["id"]) <= set(rows)
    assert not set(sources["id"][sources["is_galaxy"]]) & set(rows)
    matched = table[[rows[source_id] for source_id in stars["id"]]]
    # G, BP and RP hold the band's AB magnitude (BP - RP = 0).
    np.testing.assert_allclose(matched["phot_g_mean_mag"], stars["mag_ab"], atol=1e-5)
    assert np.all(matched["phot_bp_mean_mag"] == matched["phot_rp_mean_mag"])
    assert np.all(matched["phot_bp_mean_mag"] == matched["phot_g_mean_mag"])
    # Propagated along the proper motions to the stack's epoch, the positions
    # are the true ones; the motions are large enough for that to matter.
    motion = np.hypot(table["pmra"], table["pmdec"])
    assert motion.min() >= 2.0 and motion.max() <= 50.0 and np.median(motion) > 5.0
    elapsed = (sources.meta["EPOCH"] - matched["ref_epoch"].astype(float)) * u.yr
    start = SkyCoord(matched["ra"] * u.deg, matched["dec"] * u.deg)
    pm_ra, pm_dec = matched["pmra"].astype(float), matched["pmdec"].astype(float)
    moved = start.directional_offset_by(
        np.arctan2(pm_ra, pm_dec) * u.rad, np.hypot(pm_ra, pm_dec) * u.mas / u.yr * elapsed
    )
    truth = SkyCoord(stars["ra"], stars["dec"])
    assert np.max(moved.separation(truth).to_value(u.mas)) < 1e-3
    assert np.median(start.separation(truth).to_value(u.mas)) > 10.0
    # Gaia-like errors: sub-mas at G < 20.
    bright = matched["phot_g_mean_mag"] < 20
    assert bright.any() and np.all(matched["ra_error"][bright] < 1.0) and np.all(matched["ra_error"] > 0.01)
    faint = write_reference_catalog(VARYING_CONFIG, tmp_path / "faint.fits", faint_limit=21.0)
    assert 0 < len(faint) < len(written) and faint["phot_g_mean_mag"].max() <= 21.0


def test_reference_catalog_needs_an_ab_offset(tmp_path):
    with pytest.raises(ValueError, match="no Vega-to-AB offset"):
        write_reference_catalog(SimulationConfig(size=256, filter_name="NB118"), tmp_path / "x.fits")


def test_variable_stars(tmp_path):
    """A stack holds each variable at its true flux at the stack's midpoint (MJDMID), the
    constant sources as without variables, and the truth says which vary and how."""
    constant = read_source_truth(write_pawprint_stack(tmp_path / "constant", 0, VARYING_CONFIG).truth, 1)
    assert not np.any(constant["amplitude"])
    config = SimulationConfig(size=256, detectors=(1,), psf_variation=0.25, variable_fraction=0.5, **DENSE)
    fluxes = []
    for index in (0, 2):
        stack = write_pawprint_stack(tmp_path / "variable", index, config)
        detector = Detector(stack, 1)
        sources = read_source_truth(stack.truth, 1)
        variable = np.asarray(sources["amplitude"]) > 0
        assert variable.any() and not np.any(variable & np.asarray(sources["is_galaxy"]))
        if index == 0:
            # The same sources; only the variables' fluxes change.
            assert np.array_equal(sources["id"], constant["id"])
            np.testing.assert_array_equal(sources["flux"][~variable], constant["flux"][~variable])
            offset = variable_magnitude_offset(
                sources["amplitude"], sources["period"], sources["phase"], sources.meta["MJDMID"]
            )
            np.testing.assert_allclose(sources["flux"], constant["flux"] * 10 ** (-0.4 * offset), rtol=1e-12)
        checked = 0
        for row, box, _, _ in _isolated_truth_stars(
            sources, detector.model - detector.sky, detector.confidence, detector.saturated
        ):
            assert box.sum() == pytest.approx(row["flux"], rel=0.01)
            checked += row["amplitude"] > 0
        assert checked > 0
        fluxes.append(dict(zip(sources["id"], sources["flux"], strict=True)))
    # The two stacks, half a detector and 20 minutes apart, see the variables at different fluxes.
    common = [k for k in fluxes[0] if k in fluxes[1]]
    assert common and any(fluxes[0][k] != fluxes[1][k] for k in common)


def test_star_colours(tmp_path):
    """With star_colours, each band's true magnitudes are the stars' 2MASS magnitudes through
    CASU's transformations (Z = J + 1.025 (J - H), Y = J + 0.610 (J - H), Vega), so the stars'
    colours spread; Z is as without colours, galaxies keep one Vega magnitude in every band, and
    the 2MASS-like catalogue is the same whichever band writes it."""
    plain = SimulationConfig(size=128, detectors=(1,), **DENSE)
    z_config = dataclasses.replace(plain, star_colours=True)
    y_config = dataclasses.replace(z_config, filter_name="Y")
    truth = {
        name: read_source_truth(write_pawprint_stack(tmp_path / name, 0, config).truth, 1)
        for name, config in (("plain", plain), ("z", z_config), ("y", y_config))
    }
    np.testing.assert_array_equal(truth["z"]["flux"], truth["plain"]["flux"])
    assert np.array_equal(truth["z"]["id"], truth["y"]["id"])
    twomass = write_twomass_catalog(z_config, tmp_path / "z_2mass.fits")
    for column in ("pts_key", "j_m", "h_m", "k_m"):
        np.testing.assert_array_equal(
            twomass[column], write_twomass_catalog(y_config, tmp_path / "y.fits")[column]
        )
    rows = {key: k for k, key in enumerate(twomass["pts_key"])}
    galaxy = np.asarray(truth["z"]["is_galaxy"])
    assert galaxy.any() and np.count_nonzero(~galaxy) > 10
    stars = twomass[[rows[key] for key in truth["z"]["id"][~galaxy]]]
    j, j_minus_h = stars["j_m"].astype(float), (stars["j_m"] - stars["h_m"]).astype(float)
    for band, slope in (("z", 1.025), ("y", 0.610)):
        np.testing.assert_allclose(truth[band]["mag_vega"][~galaxy], j + slope * j_minus_h, atol=1e-5)
    z_minus_y = truth["z"]["mag_vega"] - truth["y"]["mag_vega"]
    np.testing.assert_allclose(z_minus_y[galaxy], 0.0, atol=1e-9)
    assert np.ptp(z_minus_y[~galaxy]) > 0.15
