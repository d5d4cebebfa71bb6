"""The synthetic sky: stars and galaxies at fixed positions.

One catalogue covers the whole tile (all 16 detectors at all six offsets),
so every pawprint stack, every repeat of the OB and the tile see the same
sources at the same sky positions.
"""

from __future__ import annotations

__all__ = ("SkyCatalog", "sky_catalog", "variable_magnitude_offset")

import dataclasses
import math
from functools import lru_cache

import numpy as np

from ._colours import band_magnitude_offset, draw_twomass_colours
from ._config import SimulationConfig
from ._geometry import layout_scale, plate_scale, sky_frame, tile_offset
from ._random import Stream, generator
from ._schedule import OFFSETS_PER_TILE

# Magnitude ranges and slopes of the differential counts dN/dmag ~ 10**(slope * mag).
_STARS = (15.0, 23.0, 0.2)
_GALAXIES = (17.0, 24.0, 0.3)
_BRIGHT_STARS = (11.0, 14.5, 0.0)

# Galaxy half-light radius (arcsec) at mag 20, its change per magnitude
# (dex) and its log-normal scatter (natural log), clipped to the pixel range.
_RADIUS_AT_20 = 0.6
_RADIUS_SLOPE = -0.1
_RADIUS_SCATTER = 0.3
_RADIUS_RANGE = (0.3, 6.0)

# Variable stars: semi-amplitude (mag) drawn uniformly, period (days) drawn
# log-uniformly (1 to 6 hours, so that the stacks of one night, minutes to
# hours apart, see different magnitudes).
_AMPLITUDE_RANGE = (0.1, 0.5)
_PERIOD_RANGE = (1.0 / 24.0, 6.0 / 24.0)


def variable_magnitude_offset(
    amplitude: np.ndarray | float, period: np.ndarray | float, phase: np.ndarray | float, mjd: float
) -> np.ndarray:
    """Return the magnitude of variable sources at a time minus their mean.

    Parameters
    ----------
    amplitude : `numpy.ndarray` or `float`
        Semi-amplitude (mag); 0 for constant sources.
    period : `numpy.ndarray` or `float`
        Period (days); any positive value for constant sources.
    phase : `numpy.ndarray` or `float`
        Phase (radians) at MJD 0.
    mjd : `float`
        UTC MJD.

    Returns
    -------
    offset : `numpy.ndarray`
        ``amplitude * sin(2 pi mjd / period + phase)``.
    """
    return np.asarray(amplitude) * np.sin(2.0 * np.pi * mjd / np.asarray(period) + np.asarray(phase))


@dataclasses.dataclass(frozen=True)
class SkyCatalog:
    """True sources on the sky.

    Shapes are defined on the pixel axes of the tile's sky frame, whose
    orientation is that of the pawprint stacks.
    """

    ra: np.ndarray
    """Right ascension (deg)."""

    dec: np.ndarray
    """Declination (deg)."""

    mag: np.ndarray
    """Vega magnitude in the anchor band (`lsst.obs.vista.sim._colours`):
    MAGZPT - 2.5 log10(flux / EXPTIME) there."""

    galaxy: np.ndarray
    """`True` for galaxies, `False` for stars."""

    radius: np.ndarray
    """Half-light radius (pixels) along the major axis; 0 for stars."""

    axis_ratio: np.ndarray
    """Minor over major axis; 1 for stars."""

    angle: np.ndarray
    """Angle (radians) of the major axis from +x towards +y."""

    amplitude: np.ndarray
    """Semi-amplitude (mag) of a variable's sinusoidal light curve; 0 for
    constant sources."""

    period: np.ndarray
    """Period (days) of a variable; 1 for constant sources."""

    phase: np.ndarray
    """Phase (radians) of a variable at MJD 0."""

    j_minus_h: np.ndarray
    """2MASS J - H (Vega) of a source (`lsst.obs.vista.sim._colours`)."""

    h_minus_k: np.ndarray
    """2MASS H - Ks (Vega) of a source."""

    def __len__(self) -> int:
        return len(self.ra)

    def flux(self, config: SimulationConfig, mjd: float | None = None) -> np.ndarray:
        """Return the total flux of each source (ADU per DIT).

        Parameters
        ----------
        config : `SimulationConfig`
            The simulation (DIT and zero point).
        mjd : `float`, optional
            UTC MJD at which variables are seen; their mean magnitude
            ``mag`` if not given.

        Returns
        -------
        flux : `numpy.ndarray`
            ``EXPTIME * 10**(-0.4 (m - MAGZPT))``, m the Vega magnitude in
            the simulated band (`band_magnitude_offset`); the airmass term
            of the CASU zero point is not applied.
        """
        mag = self.mag + band_magnitude_offset(config, self)
        if mjd is not None:
            mag = mag + variable_magnitude_offset(self.amplitude, self.period, self.phase, mjd)
        return config.dit * 10.0 ** (-0.4 * (mag - config.magzpt))


def sky_catalog(config: SimulationConfig) -> SkyCatalog:
    """Return the sources of a simulation.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    catalog : `SkyCatalog`
        Sources uniformly distributed over the tile and its margins, the
        same for all stacks and detectors of the simulation.
    """
    return _sky_catalog(
        config.instrument,
        config.seed,
        config.size,
        config.ra,
        config.dec,
        config.jitter,
        config.star_density,
        config.galaxy_density,
        config.bright_star_density,
        config.variable_fraction,
    )


def _magnitudes(rng: np.random.Generator, count: int, faint: tuple[float, float, float]) -> np.ndarray:
    bright, limit, slope = faint
    u = rng.uniform(size=count)
    if slope == 0:
        return bright + u * (limit - bright)
    low, high = 10.0 ** (slope * bright), 10.0 ** (slope * limit)
    return np.log10(low + u * (high - low)) / slope


@lru_cache(maxsize=4)
def _sky_catalog(
    instrument: str,
    seed: int,
    size: int,
    ra: float,
    dec: float,
    jitter: float,
    star_density: float,
    galaxy_density: float,
    bright_star_density: float,
    variable_fraction: float,
) -> SkyCatalog:
    config = SimulationConfig(
        instrument=instrument,
        seed=seed,
        size=size,
        ra=ra,
        dec=dec,
        jitter=jitter,
        star_density=star_density,
        galaxy_density=galaxy_density,
        bright_star_density=bright_star_density,
    )
    camera = config.camera
    per_mm = layout_scale(config) / camera.pixel_size
    # Half a detector, the jitter, and room for the wings of sources whose
    # centres fall outside the detectors.
    reach = 0.5 * size + jitter / plate_scale(config) + 32
    xs, ys = [], []
    for offset_index in range(1, OFFSETS_PER_TILE + 1):
        dx, dy = tile_offset(offset_index, config)
        for detector in camera.detectors.values():
            xs.append(dx + detector.focal_plane_x * per_mm)
            ys.append(dy + detector.focal_plane_y * per_mm)
    x_range = (min(xs) - reach, max(xs) + reach)
    y_range = (min(ys) - reach, max(ys) + reach)
    area = (x_range[1] - x_range[0]) * (y_range[1] - y_range[0]) * (plate_scale(config) / 60.0) ** 2

    rng = generator(seed, Stream.SOURCES)
    counts = [rng.poisson(density * area) for density in (star_density, galaxy_density, bright_star_density)]
    mags = [
        _magnitudes(rng, count, limits)
        for count, limits in zip(counts, (_STARS, _GALAXIES, _BRIGHT_STARS), strict=True)
    ]
    mag = np.concatenate(mags)
    n_galaxies = counts[1]
    galaxy = np.zeros(len(mag), dtype=bool)
    galaxy[counts[0] : counts[0] + n_galaxies] = True

    x = rng.uniform(*x_range, size=len(mag))
    y = rng.uniform(*y_range, size=len(mag))
    source_ra, source_dec = sky_frame(config).pixel_to_world_values(x, y)

    radius = np.zeros(len(mag))
    axis_ratio = np.ones(len(mag))
    angle = np.zeros(len(mag))
    arcsec = _RADIUS_AT_20 * 10.0 ** (_RADIUS_SLOPE * (mag[galaxy] - 20.0))
    arcsec *= np.exp(_RADIUS_SCATTER * rng.standard_normal(n_galaxies))
    radius[galaxy] = np.clip(arcsec / plate_scale(config), *_RADIUS_RANGE)
    axis_ratio[galaxy] = rng.uniform(0.3, 1.0, size=n_galaxies)
    angle[galaxy] = rng.uniform(0.0, math.pi, size=n_galaxies)
    # Drawn for every source from a stream of their own, so that the other
    # properties do not depend on variable_fraction.
    variability = generator(seed, Stream.VARIABILITY)
    draw = variability.uniform(size=(4, len(mag)))
    variable = np.zeros(len(mag), dtype=bool)
    variable[: counts[0]] = draw[0, : counts[0]] < variable_fraction
    amplitude = np.where(variable, _AMPLITUDE_RANGE[0] + draw[1] * np.subtract(*_AMPLITUDE_RANGE[::-1]), 0.0)
    log_period = np.log(_PERIOD_RANGE[0]) + draw[2] * np.log(_PERIOD_RANGE[1] / _PERIOD_RANGE[0])
    period = np.where(variable, np.exp(log_period), 1.0)
    phase = np.where(variable, 2.0 * math.pi * draw[3], 0.0)
    j_minus_h, h_minus_k = draw_twomass_colours(seed, len(mag))
    return SkyCatalog(
        ra=np.asarray(source_ra) % 360.0,
        dec=np.asarray(source_dec),
        mag=mag,
        galaxy=galaxy,
        radius=radius,
        axis_ratio=axis_ratio,
        angle=angle,
        amplitude=amplitude,
        period=period,
        phase=phase,
        j_minus_h=j_minus_h,
        h_minus_k=h_minus_k,
    )
