"""Unit checks of calibrateImage's stages on synthetic arrays with known answers."""

import math

import astropy.units as u
import click
import numpy as np
import pytest
from astropy.table import Table
from lsst.images import Box

from lsst.obs.vista.calibrate import (
    ColorTermConfig,
    MeshBackgroundTask,
    aperture_column,
    correlation_error_factor,
    find_quantization_step,
    match_to_reference,
    measure_noise_correlation,
    reference_magnitudes,
)
from lsst.obs.vista.cli.process_ccd import build_pipetask_command, where_from_ids


def test_find_quantization_step_finds_bscale_steps_only():
    rng = np.random.default_rng(1)
    noise = rng.normal(600.0, 3.3, 200_000)
    assert find_quantization_step(
        (np.round(noise / 0.33333333) * 0.33333333).astype(np.float32)
    ) == pytest.approx(0.33333, rel=1e-3)
    assert find_quantization_step(np.round(noise).astype(np.float32)) == 1.0
    assert find_quantization_step(noise.astype(np.float32)) == 0.0


def test_noise_correlation_of_white_and_smoothed_noise():
    rng = np.random.default_rng(2)
    white = rng.normal(size=(400, 400))
    everywhere = np.ones_like(white, dtype=bool)
    correlation = measure_noise_correlation(white, everywhere, 2)
    assert correlation[2, 2] == 1.0
    assert np.all(np.abs(np.delete(correlation.ravel(), 12)) < 0.01)
    # Neighbours along x averaged: correlation 0.5 at dx = +-1.
    smoothed = (white[:, :-1] + white[:, 1:]) / math.sqrt(2)
    correlation = measure_noise_correlation(smoothed, np.ones_like(smoothed, dtype=bool), 2)
    assert correlation[2, 1] == pytest.approx(0.5, abs=0.01) and correlation[2, 3] == pytest.approx(
        0.5, abs=0.01
    )
    assert correlation[1, 2] == pytest.approx(0.0, abs=0.01)
    # A sum over a large area: variance 1 + 2 * 0.5 times the naive one.
    assert correlation_error_factor(correlation, np.ones((41, 41))) == pytest.approx(math.sqrt(2), rel=0.02)
    # A single pixel sees no correlation.
    assert correlation_error_factor(correlation, np.ones((1, 1))) == pytest.approx(1.0)


def _correlation_by_shifts(residual, background, max_lag):
    """The correlation `measure_noise_correlation` defines, summed lag by lag."""
    values = np.where(background, residual, 0.0)
    weight = background.astype(np.float64)
    h, w = values.shape
    zero = np.sum(values * values) / weight.sum()
    correlation = np.zeros((2 * max_lag + 1, 2 * max_lag + 1))
    for dy in range(-max_lag, max_lag + 1):
        for dx in range(-max_lag, max_lag + 1):
            a = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
            b = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
            pairs = np.sum(weight[a] * weight[b])
            if pairs > 0:
                correlation[max_lag + dy, max_lag + dx] = np.sum(values[a] * values[b]) / pairs / zero
    return correlation


@pytest.mark.parametrize("shape, max_lag", [((157, 203), 3), ((64, 48), 5)])
def test_noise_correlation_is_the_mean_product_of_sky_pairs(shape, max_lag):
    """Correlated noise with masked holes and stripes: every lag equals the
    mean product over the pairs of sky pixels at that lag."""
    rng = np.random.default_rng(7)
    white = rng.normal(size=(shape[0] + 2, shape[1] + 2))
    residual = white[1:-1, 1:-1] + 0.4 * white[2:, 1:-1] + 0.3 * white[1:-1, :-2] - 0.2 * white[:-2, 2:]
    background = rng.random(shape) > 0.3
    background[:, 10:14] = False
    background[5:9, :] = False
    expected = _correlation_by_shifts(residual, background, max_lag)
    correlation = measure_noise_correlation(residual, background, max_lag)
    np.testing.assert_allclose(correlation, expected, rtol=0, atol=1e-12)
    assert abs(correlation[max_lag, max_lag + 1]) > 0.05
    # The error factor of a weighted sum: sum over pixel pairs of w_a w_b rho(b - a).
    weights = rng.random((4, 9))
    pixels = list(np.ndindex(weights.shape))
    covariance = sum(
        weights[a] * weights[b] * expected[max_lag + b[0] - a[0], max_lag + b[1] - a[1]]
        for a in pixels
        for b in pixels
        if abs(b[0] - a[0]) <= max_lag and abs(b[1] - a[1]) <= max_lag
    )
    assert correlation_error_factor(correlation, weights) == pytest.approx(
        math.sqrt(covariance / np.sum(weights**2)), rel=1e-12
    )


def test_background_follows_a_gradient_under_stars():
    """The SplineField stored is what is subtracted, and it recovers the sky."""
    rng = np.random.default_rng(3)
    shape = (512, 512)
    y, x = np.indices(shape)
    sky = 100.0 + 0.02 * x + 0.01 * y
    image = sky + rng.normal(0.0, 2.0, shape)
    for cx, cy in rng.uniform(20, 490, (60, 2)):
        image += 2000.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5**2)) / (2 * np.pi * 1.5**2)
    bbox = Box.from_shape(shape, start=(10, 20))
    result = MeshBackgroundTask().run(
        image.astype(np.float32), np.full(shape, 4.0, np.float32), np.zeros(shape, bool), bbox, u.adu
    )
    assert np.array_equal(result.image, result.field.render(bbox, dtype=np.float32).array)
    assert np.median(np.abs(result.image - sky)) < 0.1
    assert result.field.unit == u.adu and result.field.bounds == bbox
    assert result.sources.any() and result.quantization_step == 0.0


def test_match_to_reference_recovers_a_common_offset():
    rng = np.random.default_rng(4)
    reference = rng.uniform(0, 1000, (50, 2))
    sources = np.vstack([reference[:40] - [3.0, -2.0], rng.uniform(0, 1000, (20, 2))])
    found, matched = match_to_reference(
        sources[:, 0], sources[:, 1], reference[:, 0], reference[:, 1], search=10.0, radius=1.0
    )
    assert set(zip(found, matched, strict=True)) >= {(i, i) for i in range(40)}
    assert np.all(found[matched != found] >= 40)


def test_colour_terms():
    reference = Table({"g": [18.0, 18.0, 18.0], "bp": [18.5, 19.0, np.nan], "rp": [18.0, 17.0, 18.0]})
    term = ColorTermConfig(
        primary="g", colorColumns=["bp", "rp"], coefficients=[0.1, 0.2, 0.05], colorRange=[-1.0, 1.5],
        defaultColor=1.0,
    )  # fmt: skip
    # colour 0.5; 2.0 clipped to 1.5; missing -> 1.0
    expected = [18.0 + 0.1 + 0.2 * c + 0.05 * c * c for c in (0.5, 1.5, 1.0)]
    assert reference_magnitudes(reference, term) == pytest.approx(expected)


def test_aperture_column_names():
    assert [aperture_column(r) for r in (3.0, 4.5, 12.0, 17.0)] == ["ap03", "ap04p5", "ap12", "ap17"]


def test_processccd_command():
    command = build_pipetask_command(
        "REPO", instrument="DECam", where="detector=33", inputs=["DECam/defaults"], output="u/x", jobs=2,
        config_files=["my.py", "isr:isr.py"], config_overrides=["doCorrelatedNoise=False"],
    )  # fmt: skip
    assert command[:2] == ["pipetask", "run"] and command[command.index("-p") + 1].endswith(
        "DECam/ProcessCcd.yaml"
    )
    assert "calibrateImage:my.py" in command and "isr:isr.py" in command
    assert "calibrateImage:doCorrelatedNoise=False" in command
    with pytest.raises(click.BadParameter, match="is not KEY=VALUE"):
        where_from_ids(["visit"])


def test_package_exports_every_stage_name_on_first_use():
    """The package loads its stages on first use: its ``__all__`` is every
    name its submodules export, each the submodule's own object."""
    import importlib
    import pkgutil

    import lsst.obs.vista.calibrate as calibrate

    exported = {}
    for info in pkgutil.iter_modules(calibrate.__path__):
        module = importlib.import_module(f"{calibrate.__name__}.{info.name}")
        exported.update(dict.fromkeys(module.__all__, module))
    assert sorted(calibrate.__all__) == sorted(exported)
    for name, module in exported.items():
        assert getattr(calibrate, name) is getattr(module, name), name
