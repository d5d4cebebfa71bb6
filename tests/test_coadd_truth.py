"""The coadd against truth: makeDirectWarp and assembleCellCoadd on a
synthetic dithered field of exactly known stars, PSFs and noise
(`coadd_field`), four visits of two detectors each.

Checked: PSF fluxes and positions of bright stars, the cell PSF against
the stars of its cell, no flux step between cells with different inputs,
the coadd noise per pixel and in apertures against what the input
variances and the resampling covariance predict, and a transient and a
satellite trail in one visit clipped.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from lsst.images.cells import CellCoadd

import coadd_field as field
from lsst.obs.vista.coadd import AssembleCellCoaddTask, MakeDirectWarpTask
from lsst.obs.vista.coadd.assemble import _binned, _nanmedian_over_inputs, _pixels_of_blocks
from lsst.obs.vista.coadd.resampling import resample_image
from lsst.obs.vista.isr.masks import planes_set
from lsst.obs.vista.psf_shape import fwhm_from_moments, kernel_moments

STAMP = 15
"""Half-size (tract pixels) of the stamps stars are measured in."""

TRANSIENT_VISIT = 2


def coadd_of(base, truth, *, seed: int, with_stars: bool = True, extras=None) -> CellCoadd:
    skymap = field.skymap()
    tract = skymap[0]
    patch = tract.find_patch(*field.CENTRE)
    warps, noises = [], []
    for visit in field.VISITS:
        images = field.make_visit_images(
            base, visit, truth, seed=seed, with_stars=with_stars, extra=(extras or {}).get(visit.visit)
        )
        result = MakeDirectWarpTask().run(
            images, skymap=skymap, skymap_name="test", tract_id=0, patch_id=patch.id, visit=visit.visit
        )
        warps.append(result.warp)
        noises.append(result.noise_warp)
    return AssembleCellCoaddTask().run(warps, noises).coadd


def transient_and_trail(base, visit: field.Visit) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """A point-like transient and a satellite trail (nJy images) on detector 1;
    the transient's sky position and the trail's sky positions (deg)."""
    ny, nx = base.bbox.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    x0, y0 = 0.8 * nx, 0.7 * ny
    transient = (
        3e4
        * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / visit.sigma**2)
        / (2 * math.pi * visit.sigma**2)
    )
    distance = np.abs((yy - 0.2 * ny) - 0.35 * (xx - 0.6 * nx)) / math.hypot(1, 0.35)
    trail = 600.0 * np.exp(-0.5 * (distance / 1.2) ** 2)
    wcs = field.detector_wcs(visit, 1, nx, ny)
    sky = wcs.wcs_pix2world([[x0, y0]], 0)[0]
    trail_y, trail_x = np.nonzero(trail > 300.0)
    trail_sky = wcs.wcs_pix2world(np.stack([trail_x, trail_y], axis=1).astype(float), 0)
    return {1: transient + trail}, sky, trail_sky


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    return field.make_base(Path(tmp_path_factory.mktemp("coadd_base")))


@pytest.fixture(scope="module")
def truth():
    return field.stars()


@pytest.fixture(scope="module")
def injected(base):
    visit = next(v for v in field.VISITS if v.visit == TRANSIENT_VISIT)
    return transient_and_trail(base, visit)


@pytest.fixture(scope="module")
def coadd(base, truth, injected) -> CellCoadd:
    extras, _, _ = injected
    return coadd_of(base, truth, seed=1, extras={TRANSIENT_VISIT: extras})


def star_measurements(coadd: CellCoadd, truth) -> dict[str, np.ndarray]:
    """PSF flux, HSM centroid offset and moments of each star fully inside
    a cell with exact PSF."""
    import galsim

    tract = field.skymap()[0]
    x, y = tract.sky_to_pixel(truth["ra"], truth["dec"])
    rows = []
    bad = coadd.mask.schema.bitmask("NO_DATA", "INEXACT_PSF", "CLIPPED", "REJECTED")
    for xs, ys, flux in zip(x, y, truth["flux"], strict=True):
        ix, iy = int(round(xs)), int(round(ys))
        box_y = slice(iy - STAMP - coadd.bbox.y.start, iy + STAMP + 1 - coadd.bbox.y.start)
        box_x = slice(ix - STAMP - coadd.bbox.x.start, ix + STAMP + 1 - coadd.bbox.x.start)
        if (
            box_y.start < 0
            or box_x.start < 0
            or box_y.stop > coadd.bbox.y.size
            or box_x.stop > coadd.bbox.x.size
        ):
            continue
        if np.any(coadd.mask.array[box_y, box_x] & bad):
            continue
        cell = coadd.grid.index_of(x=ix, y=iy)
        cell_box = coadd.grid.bbox_of(cell)
        if not (
            cell_box.x.start + STAMP <= ix < cell_box.x.stop - STAMP
            and cell_box.y.start + STAMP <= iy < cell_box.y.stop - STAMP
        ):
            continue  # the stamp would mix cells
        image = coadd.image.array[box_y, box_x].astype(float)
        kernel = coadd.psf.compute_kernel_image(x=xs, y=ys)
        offsets = np.arange(-STAMP, STAMP + 1, dtype=float)
        oy, ox = np.meshgrid(offsets + (iy - ys), offsets + (ix - xs), indexing="ij")
        model = resample_image(kernel.array, ox - kernel.bbox.x.start, oy - kernel.bbox.y.start)
        psf_flux = float(np.sum(model * image) / np.sum(model * model))
        moments = galsim.hsm.FindAdaptiveMom(galsim.Image(np.ascontiguousarray(image)))
        star_ixx, star_iyy, _ = kernel_moments(image)
        psf_ixx, psf_iyy, _ = kernel_moments(kernel.array)
        rows.append(
            (
                xs,
                psf_flux / flux,
                moments.moments_centroid.x - 1 - STAMP + ix - xs,
                moments.moments_centroid.y - 1 - STAMP + iy - ys,
                float(fwhm_from_moments(star_ixx, star_iyy)) / float(fwhm_from_moments(psf_ixx, psf_iyy)),
                cell.i * 100 + cell.j,
            )
        )
    names = ("x", "flux_ratio", "dx", "dy", "fwhm_ratio", "cell")
    return {name: np.array(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def test_psf_fluxes_of_bright_stars(coadd, truth) -> None:
    stars = star_measurements(coadd, truth)
    assert len(stars["flux_ratio"]) >= 20
    assert abs(np.median(stars["flux_ratio"]) - 1) < 0.01
    assert np.all(np.abs(stars["flux_ratio"] - 1) < 0.03)


def test_astrometry(coadd, truth) -> None:
    stars = star_measurements(coadd, truth)
    rms_mas = 200.0 * math.sqrt(np.mean(stars["dx"] ** 2 + stars["dy"] ** 2) / 2)
    assert rms_mas < 10.0


def test_cell_psf_matches_its_stars(coadd, truth) -> None:
    stars = star_measurements(coadd, truth)
    assert np.all(np.abs(stars["fwhm_ratio"] - 1) < 0.02)


def test_no_flux_step_between_cells(coadd, truth) -> None:
    """Cells with different inputs (the detector gap moves with the dither)
    give the same photometry: west and east of the field centre, and each
    cell's median against all."""
    stars = star_measurements(coadd, truth)
    centre_x = field.skymap()[0].sky_to_pixel(*field.CENTRE)[0][0]
    west = np.median(stars["flux_ratio"][stars["x"] < centre_x])
    east = np.median(stars["flux_ratio"][stars["x"] >= centre_x])
    assert abs(west - east) < 0.005


def test_noise_per_pixel_and_in_apertures(base, truth) -> None:
    """Pure-noise visits: the coadd's scatter per pixel matches its variance
    plane within 3%, and in apertures of 1 to 10 PSF FWHM matches the
    scatter of its noise realisation (which carries the resampling
    covariance) within 3% plus twice the sampling error of the comparison
    (two variances of n apertures each: about ``(1 / n)**0.5`` on the
    ratio of their square roots)."""
    pulls = []
    squares: dict[int, list[float]] = {
        1: [0.0, 0.0, 0],
        2: [0.0, 0.0, 0],
        5: [0.0, 0.0, 0],
        10: [0.0, 0.0, 0],
    }
    for seed in (5, 6):
        coadd = coadd_of(base, truth, seed=seed, with_stars=False)
        good = ~planes_set(coadd.mask.array, coadd.mask.schema, ["NO_DATA", "INEXACT_PSF"])
        pulls.append(coadd.image.array[good] / np.sqrt(coadd.variance.array[good]))
        fwhm = float(
            np.median(
                [
                    fwhm_from_moments(*kernel_moments(coadd.psf[c].array)[:2])
                    for c in coadd.psf.bounds.cell_indices()
                ]
            )
        )
        for n_fwhm, totals in squares.items():
            radius = 0.5 * n_fwhm * fwhm
            measured = aperture_sums(coadd.image.array, good, radius)
            predicted = aperture_sums(coadd.noise_realizations[0].array, good, radius)
            totals[0] += float(np.sum(measured**2))
            totals[1] += float(np.sum(predicted**2))
            totals[2] += len(measured)
    pixel_ratio = float(np.std(np.concatenate(pulls)))
    assert abs(pixel_ratio - 1) < 0.03, pixel_ratio
    for n_fwhm, (measured, predicted, n) in squares.items():
        ratio = math.sqrt(measured / predicted)
        assert abs(ratio - 1) < 0.03 + 2 * math.sqrt(1 / n), (n_fwhm, ratio, n)


def aperture_sums(image: np.ndarray, good: np.ndarray, radius: float) -> np.ndarray:
    """Sums in circular apertures on a grid, where wholly on good pixels."""
    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx**2 + yy**2 <= radius**2
    sums = []
    step = 2 * r + 2
    for y in range(r, image.shape[0] - r, step):
        for x in range(r, image.shape[1] - r, step):
            stamp = (slice(y - r, y + r + 1), slice(x - r, x + r + 1))
            if np.all(good[stamp][disc]):
                sums.append(float(np.sum(image[stamp][disc])))
    return np.array(sums)


def test_transient_and_trail_clipped(coadd, injected, truth) -> None:
    _, sky, trail_sky = injected
    tract = field.skymap()[0]
    clipped = coadd.mask.get("CLIPPED")
    x, y = tract.sky_to_pixel(sky[0], sky[1])
    ix, iy = int(round(x[0])) - coadd.bbox.x.start, int(round(y[0])) - coadd.bbox.y.start
    assert 0 <= ix < coadd.bbox.x.size and 0 <= iy < coadd.bbox.y.size
    assert clipped[iy, ix]
    # The coadd there is the other visits' sky: no trace of the transient.
    sigma = math.sqrt(coadd.variance.array[iy, ix])
    assert abs(coadd.image.array[iy, ix]) < 6 * sigma
    x, y = tract.sky_to_pixel(trail_sky[:, 0], trail_sky[:, 1])
    ix = np.round(x).astype(int) - coadd.bbox.x.start
    iy = np.round(y).astype(int) - coadd.bbox.y.start
    inside = (ix >= 0) & (ix < coadd.bbox.x.size) & (iy >= 0) & (iy < coadd.bbox.y.size)
    # Only cells with at least three inputs can tell an artefact.
    contributions = coadd.provenance.contributions
    visits_in_cell = {
        (int(i), int(j)): len(
            set(contributions["visit"][(contributions["cell_i"] == i) & (contributions["cell_j"] == j)])
        )
        for i, j in set(zip(contributions["cell_i"], contributions["cell_j"], strict=True))
    }
    for k in np.nonzero(inside)[0]:
        cell = coadd.grid.index_of(x=ix[k] + coadd.bbox.x.start, y=iy[k] + coadd.bbox.y.start)
        inside[k] = visits_in_cell.get((cell.i, cell.j), 0) >= 3
    assert inside.sum() > 100
    assert np.mean(clipped[iy[inside], ix[inside]]) > 0.98
    # The trail and the transient, grown, cover about 1% of the patch;
    # clipping elsewhere is rare.
    assert np.mean(clipped) < 0.015


def test_legacy_skymap_patches_get_a_cell_grid(base, truth) -> None:
    """On a legacy tract builder (hsc_rings_v1's kind: patches with a border,
    no cells) the warp lays a grid of ``legacyCellSize`` cells from the
    patch's outer corner, whole cells covering the outer box, and the
    assembly runs on it."""
    from lsst.obs.vista.skymap import make_skymap

    config = field.skymap_config()
    config.tractBuilder.name = "legacy"
    config.tractBuilder["legacy"].patchInnerDimensions = [700, 700]
    config.tractBuilder["legacy"].patchBorder = 50
    skymap = make_skymap(config)
    patch = skymap[0].find_patch(*field.CENTRE)
    warp_task = MakeDirectWarpTask()
    warp_task.config.legacyCellSize = 128
    warps, noises = [], []
    for visit in field.VISITS[:3]:
        images = field.make_visit_images(base, visit, truth, seed=2)
        result = warp_task.run(
            images, skymap=skymap, skymap_name="legacy", tract_id=0, patch_id=patch.id, visit=visit.visit
        )
        warps.append(result.warp)
        noises.append(result.noise_warp)
    coadd = AssembleCellCoaddTask().run(warps, noises).coadd
    grid = coadd.grid
    assert grid.cell_shape.x == grid.cell_shape.y == 128
    assert grid.bbox.x.start == patch.outer_bbox.x.start and grid.bbox.y.start == patch.outer_bbox.y.start
    assert grid.bbox.x.size % 128 == 0 and grid.bbox.x.size >= patch.outer_bbox.x.size
    assert grid.bbox.x.size - patch.outer_bbox.x.size < 128
    assert coadd.patch.inner_bbox == patch.inner_bbox
    covered = coadd.mask.get("NO_DATA") == 0
    assert covered.mean() > 0.5 and np.all(np.isfinite(coadd.image.array[covered]))


def test_cutout_smaller_than_a_cell_gives_a_coadd(base, truth) -> None:
    """Archive cutouts smaller than a cell: no input covers any cell whole,
    so every cell with data is assembled from the partial inputs, listed in
    PARTIAL_CELLS, and has a PSF."""
    from lsst.images import Box, Interval

    skymap = field.skymap()
    patch = skymap[0].find_patch(*field.CENTRE)
    cutout = Box(y=Interval(200, 260), x=Interval(300, 360))
    warps, noises = [], []
    for visit in field.VISITS[:3]:
        images = field.make_visit_images(base, visit, truth, seed=4)
        result = MakeDirectWarpTask().run(
            {1: images[1][cutout]}, skymap=skymap, skymap_name="test", tract_id=0, patch_id=patch.id,
            visit=visit.visit,
        )  # fmt: skip
        warps.append(result.warp)
        noises.append(result.noise_warp)
    assert all(0 < warp.metadata["COVERED_PIXELS"] < 120 * 120 for warp in warps)
    coadd = AssembleCellCoaddTask().run(warps, noises).coadd
    covered = coadd.mask.get("NO_DATA") == 0
    partial = coadd.metadata["PARTIAL_CELLS"].split(";")
    cells = {
        coadd.grid.index_of(x=x + coadd.bbox.x.start, y=y + coadd.bbox.y.start)
        for y, x in np.argwhere(covered)
    }
    assert {f"{c.i},{c.j}" for c in cells} == set(partial)
    for cell in cells:
        kernel = coadd.psf[cell].array
        assert abs(kernel.sum() - 1) < 1e-6
    assert np.all(np.isfinite(coadd.image.array[covered]))


@pytest.mark.parametrize("n_inputs", [1, 2, 3, 4, 7])
def test_median_over_inputs_is_numpy_nanmedian(n_inputs: int) -> None:
    """The artefact search's median over the inputs is `numpy.nanmedian`'s,
    NaN where no input has a value, for odd and even numbers of values."""
    rng = np.random.default_rng(n_inputs)
    stack = rng.normal(size=(n_inputs, 40, 50)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        expected = np.nanmedian(stack, axis=0)
    median = _nanmedian_over_inputs(stack)
    assert median.dtype == stack.dtype
    np.testing.assert_allclose(median, expected, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize(("factor", "phase"), [(1, (0, 0)), (2, (0, 0)), (2, (1, 0)), (3, (2, 1))])
def test_binned_grid_of_odd_size_and_back(factor: int, phase: tuple[int, int]) -> None:
    """The artefact search's binned grid: each block (those at the edges
    holding what of them is in the image, the first ones shifted by the
    phase) is the mean of its usable pixels, usable where at least half of
    them are; its blocks map back to exactly their usable pixels."""
    rng = np.random.default_rng(factor)
    image = rng.normal(size=(7, 11)).astype(np.float32)
    usable = rng.random(image.shape) < 0.6
    values, binned_usable = _binned(image, usable, factor, phase)
    shape = (-(-(7 + phase[0]) // factor), -(-(11 + phase[1]) // factor))
    assert values.shape == binned_usable.shape == shape
    # The image placed in a grid of whole blocks, unusable outside.
    padded_usable = np.zeros((shape[0] * factor, shape[1] * factor), dtype=bool)
    padded_image = np.zeros(padded_usable.shape, dtype=np.float32)
    inside = np.s_[phase[0] : phase[0] + 7, phase[1] : phase[1] + 11]
    padded_usable[inside], padded_image[inside] = usable, image
    padded_in = np.zeros(padded_usable.shape, dtype=bool)
    padded_in[inside] = True
    for row in range(shape[0]):
        for column in range(shape[1]):
            block = np.s_[row * factor : (row + 1) * factor, column * factor : (column + 1) * factor]
            in_block = padded_usable[block][padded_in[block]]
            assert binned_usable[row, column] == (2 * in_block.sum() >= in_block.size)
            if binned_usable[row, column]:
                expected = padded_image[block][padded_usable[block]].mean()
                assert values[row, column] == pytest.approx(expected, rel=1e-6)
    blocks = rng.random(shape) < 0.5
    ys, xs = _pixels_of_blocks(blocks, factor, phase, usable)
    mapped = np.zeros(image.shape, dtype=bool)
    mapped[ys, xs] = True
    expected = np.repeat(np.repeat(blocks, factor, axis=0), factor, axis=1)[inside] & usable
    np.testing.assert_array_equal(mapped, expected)
