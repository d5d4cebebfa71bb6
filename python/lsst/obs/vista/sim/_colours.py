"""The stars' colours: their magnitudes in each band of the instrument.

Every source has a 2MASS colour (`draw_twomass_colours`: J - H uniform in
[0.2, 0.8] and H - Ks in [0.0, 0.3], the range of most unreddened field
stars; `SkyCatalog`'s ``j_minus_h`` and ``h_minus_k``).  The instrument's colour terms turn it
into magnitudes: ``calibrateImage``'s ``photometry.colorTerms`` (as the
instrument's config overrides give them) predict a band's AB magnitude from
2MASS J, H, Ks, and its Vega magnitude is that minus the band's Vega-to-AB
offset (the isr's ``vegaToAb``).  For VIRCAM these are CASU's
transformations, e.g. Z = J + 1.025 (J - H), so Z - Y and Y - Ks of the
stars spread over a few tenths of a magnitude (``config/vircam/
calibrateImage.py`` gives every coefficient and its source).

`SkyCatalog.mag` is a star's Vega magnitude in the anchor band: with
`SimulationConfig.star_colours`, the z band (so a Z stack is the same with
or without colours) and every other band follows from the colour; without,
the simulated band, in which every source then has the same Vega magnitude
in every band.  Galaxies have the same Vega magnitude in every band either
way.  2MASS J, H, Ks of every source follow from the anchor band, so the
2MASS-like catalogue written with any band is the same.
"""

from __future__ import annotations

__all__ = (
    "band_magnitude_offset",
    "band_vega_to_ab",
    "colour_term",
    "draw_twomass_colours",
    "twomass_magnitudes",
)

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ._config import SimulationConfig
from ._random import Stream, generator

if TYPE_CHECKING:
    from ..calibrate import ColorTermConfig
    from ._sky import SkyCatalog

COLOURED_ANCHOR_BAND = "z"
"""Band whose Vega magnitude `SkyCatalog.mag` holds when stars have colours."""

_J_MINUS_H = (0.2, 0.8)
_H_MINUS_K = (0.0, 0.3)


def draw_twomass_colours(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the 2MASS J - H and H - Ks (Vega) of every source.

    Parameters
    ----------
    seed : `int`
        Seed of the simulation.
    count : `int`
        Number of sources.

    Returns
    -------
    j_minus_h, h_minus_k : `numpy.ndarray`
        Uniform in [0.2, 0.8] and [0.0, 0.3], drawn for every source from a
        stream of their own, so that a colour depends on nothing else.
    """
    rng = generator(seed, Stream.COLOUR)
    return rng.uniform(*_J_MINUS_H, size=count), rng.uniform(*_H_MINUS_K, size=count)


def twomass_magnitudes(config: SimulationConfig, sky: SkyCatalog) -> dict[str, np.ndarray]:
    """Return the 2MASS Vega magnitudes of every source.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation (instrument, band and ``star_colours``).
    sky : `SkyCatalog`
        All sources of the simulation.

    Returns
    -------
    magnitudes : `dict` [`str`, `numpy.ndarray`]
        ``j_m``, ``h_m``, ``k_m``: the instrument's colour term for the
        anchor band applied to them gives the source's AB magnitude there.

    Raises
    ------
    ValueError
        Raised if the anchor band has no Vega-to-AB offset or its
        instrument no colour term for it.
    """
    relative = _relative_twomass(sky)
    j = sky.mag - _vega_minus_j(config, _anchor_band(config), relative)
    return {name: j + shift for name, shift in relative.items()}


def band_magnitude_offset(config: SimulationConfig, sky: SkyCatalog) -> np.ndarray | float:
    """Return the Vega magnitude of every source in the simulated band
    minus `SkyCatalog.mag`.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation (instrument, band and ``star_colours``).
    sky : `SkyCatalog`
        All sources of the simulation.

    Returns
    -------
    offset : `numpy.ndarray` or `float`
        0 without ``star_colours`` and for galaxies; for stars with
        ``star_colours``, the band's colour term minus the z band's.

    Raises
    ------
    ValueError
        Raised with ``star_colours`` if the band or z has no Vega-to-AB
        offset or no colour term.
    """
    band = _band(config)
    anchor = _anchor_band(config)
    if band == anchor:
        return 0.0
    relative = _relative_twomass(sky)
    offset = _vega_minus_j(config, band, relative) - _vega_minus_j(config, anchor, relative)
    return np.where(sky.galaxy, 0.0, offset)


def _band(config: SimulationConfig) -> str:
    return config.camera.filters_by_header_name[config.filter_name].band


def _anchor_band(config: SimulationConfig) -> str:
    return COLOURED_ANCHOR_BAND if config.star_colours else _band(config)


def _relative_twomass(sky: SkyCatalog) -> dict[str, np.ndarray]:
    """2MASS magnitudes of every source relative to its J."""
    return {"j_m": 0.0 * sky.j_minus_h, "h_m": -sky.j_minus_h, "k_m": -sky.j_minus_h - sky.h_minus_k}


def _vega_minus_j(config: SimulationConfig, band: str, relative: dict[str, np.ndarray]) -> np.ndarray:
    """Vega magnitude in ``band`` minus 2MASS J, through the colour term."""
    offset, term = band_vega_to_ab(config.instrument, band), colour_term(config.instrument, band)
    if offset is None or term is None:
        raise ValueError(
            f"band {band} of {config.instrument} has no Vega-to-AB offset or no 2MASS colour term: no "
            "magnitudes from 2MASS colours"
        )
    first, second = term.colorColumns
    colour = relative[first] - relative[second]
    if term.colorRange:
        colour = np.clip(colour, *term.colorRange)
    ab_minus_primary = np.polynomial.polynomial.polyval(colour, list(term.coefficients))
    return relative[term.primary] + ab_minus_primary - offset


@lru_cache(maxsize=16)
def band_vega_to_ab(instrument: str, band: str) -> float | None:
    """Return m_AB - m_Vega of a band.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument.
    band : `str`
        Band.

    Returns
    -------
    offset : `float` or `None`
        The ``vegaToAb`` of `lsst.obs.vista.VistaIsrConfig` for the band as
        the instrument's config overrides give it (the offsets the isr
        applies), or `None` where it has none.
    """
    # Imported here: the isr package is not needed to make pixels.
    from ..instrument import policy_instrument
    from ..isr.casu_task import VistaIsrConfig

    isr_config = VistaIsrConfig()
    policy_instrument(instrument)().applyConfigOverrides("isr", isr_config)
    return isr_config.vegaToAb.get(band)


@lru_cache(maxsize=16)
def colour_term(instrument: str, band: str) -> ColorTermConfig | None:
    """Return the instrument's 2MASS colour term for a band (`None` where
    it has none), as its ``calibrateImage`` config overrides give it."""
    # Imported here: the calibrate task is not needed to make pixels.
    from ..calibrate import CalibrateImageConfig
    from ..instrument import policy_instrument

    calibrate_config = CalibrateImageConfig()
    policy_instrument(instrument)().applyConfigOverrides("calibrateImage", calibrate_config)
    return calibrate_config.photometry.colorTerms.get(band)
