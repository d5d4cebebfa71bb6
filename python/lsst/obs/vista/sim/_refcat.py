"""A Gaia-DR3-like reference catalogue of the simulated stars.

The table has the columns, FITS types and (Gaia's, unwritten) units of the
Gaia chunks that legacyzpts uses (``gaia-chunk-*.fits``): positions in deg,
their errors, parallaxes and proper motions in mas and mas/yr.  It lists
every star of the simulation (galaxies are left out), with ``source_id`` the
``id`` of the stacks' source truth.

Astrometry
----------
Each star gets a random proper motion; ``ra``, ``dec`` are its positions at
``ref_epoch`` such that linear propagation to the stacks' epoch, ::

    dec(t) = dec + pmdec (t - ref_epoch)
    ra(t) = ra + pmra (t - ref_epoch) / cos(dec)

(``pmra`` is mu_alpha* = mu_alpha cos(dec), as in Gaia; t a Julian epoch,
TCB) gives the true position the stacks were drawn with.  Great-circle
offsets or space-motion propagation agree with it to < 1 microarcsecond at
these motions.  The stars do not move between the stacks of a simulation:
hours to days apart, they would move by < 1 mas.  Parallaxes are 0.  The
error columns are Gaia-like (below); the values themselves are exact.

Photometry (synthetic)
----------------------
G holds the star's AB magnitude in the simulated band and BP - RP = 0
(BP = RP = G), so a photometric calibration whose colour term vanishes at
zero colour reproduces the band's AB magnitudes exactly.

Gaia-like errors
----------------
Figures measured on the 921 five-parameter sources of the Gaia chunks of the
project's DECam test case 6 (``decam_cp/testcase6/reference``):
``1 / phot_g_mean_flux_over_error = hypot(10**(0.3 (G - 20)) / 145, 1/3000)``;
``ra_error = 86 / (G flux over error)`` mas, ``dec_error = 73 / ...``;
parallax, pmra and pmdec errors 1.13, 1.9 and 1.8 times the position
errors; BP and RP flux over error 0.075 and 0.17 times G's; the other
columns their medians there.
"""

from __future__ import annotations

__all__ = ("REFERENCE_COLUMNS", "REFERENCE_EPOCH", "write_reference_catalog")

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ._colours import band_magnitude_offset
from ._config import SimulationConfig
from ._files import FitsFile
from ._headers import SIMULATE_CARD
from ._random import Stream, generator
from ._schedule import visit
from ._sky import sky_catalog
from ._sources import vega_to_ab

REFERENCE_EPOCH = 2016.0
"""``ref_epoch`` of the positions (Julian year, Gaia DR3's)."""

REFERENCE_COLUMNS = (
    ("source_id", "i8"),
    ("ra", "f8"),
    ("dec", "f8"),
    ("ra_error", "f4"),
    ("dec_error", "f4"),
    ("phot_g_mean_mag", "f4"),
    ("phot_g_mean_flux_over_error", "f4"),
    ("phot_g_n_obs", "i2"),
    ("phot_bp_mean_mag", "f4"),
    ("phot_bp_mean_flux_over_error", "f4"),
    ("phot_bp_n_obs", "i2"),
    ("phot_rp_mean_mag", "f4"),
    ("phot_rp_mean_flux_over_error", "f4"),
    ("phot_rp_n_obs", "i2"),
    ("astrometric_weight_al", "f4"),
    ("astrometric_n_obs_al", "i2"),
    ("astrometric_n_good_obs_al", "i2"),
    ("astrometric_excess_noise", "f4"),
    ("astrometric_excess_noise_sig", "f4"),
    ("duplicated_source", "?"),
    ("ref_epoch", "f4"),
    ("parallax", "f4"),
    ("parallax_error", "f4"),
    ("pmra", "f4"),
    ("pmra_error", "f4"),
    ("pmdec", "f4"),
    ("pmdec_error", "f4"),
    ("phot_variable_flag", "?"),
    ("a_g_val", "f4"),
    ("e_bp_min_rp_val", "f4"),
    ("phot_bp_rp_excess_factor", "f4"),
    ("astrometric_sigma5d_max", "f4"),
    ("astrometric_params_solved", "f4"),
)
"""Names and dtypes of the columns, in the order of the Gaia chunks, whose
FITS types (K, D, E, I, L) they are written as."""

_PROPER_MOTION_RANGE = (2.0, 50.0)
"""Range (mas/yr) of the log-uniform proper-motion amplitudes."""

_MAS_PER_DEG = 3.6e6

# Medians of the Gaia chunks (module docstring) for the columns that have
# no bearing on the simulation.
_CONSTANTS = {
    "phot_g_n_obs": 146,
    "phot_bp_n_obs": 14,
    "phot_rp_n_obs": 15,
    "astrometric_weight_al": 0.266,
    "astrometric_n_obs_al": 149,
    "astrometric_n_good_obs_al": 147,
    "astrometric_excess_noise": 0.159,
    "astrometric_excess_noise_sig": 0.184,
    "duplicated_source": False,
    "phot_variable_flag": False,
    "a_g_val": np.nan,
    "e_bp_min_rp_val": np.nan,
    "phot_bp_rp_excess_factor": 1.33,
    "astrometric_params_solved": 31.0,
}


def _flux_over_error(g: np.ndarray) -> np.ndarray:
    """Return a Gaia-like G flux over error at G magnitudes ``g``."""
    return 1.0 / np.hypot(10.0 ** (0.3 * (g - 20.0)) / 145.0, 1.0 / 3000.0)


def write_reference_catalog(
    config: SimulationConfig, path: str | Path, *, index: int = 0, faint_limit: float | None = None
) -> Table:
    """Write a Gaia-DR3-like reference catalogue of the simulated stars.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.
    path : `str` or `pathlib.Path`
        FITS file to write (its directory is created if needed).
    index : `int`, optional
        Stack index whose DATE-OBS is the epoch at which the propagated
        positions are the true ones.
    faint_limit : `float`, optional
        Leave out stars fainter than this G (AB) magnitude, as Gaia's limit
        near G = 21 would; all stars by default.

    Returns
    -------
    table : `astropy.table.Table`
        The rows written, one per star: the `REFERENCE_COLUMNS` (see the
        module docstring for the values).

    Raises
    ------
    ValueError
        Raised if the simulated band has no Vega-to-AB offset.
    """
    offset = vega_to_ab(config)
    if offset is None:
        raise ValueError(f"filter {config.filter_name} has no Vega-to-AB offset: no AB magnitudes")
    sky = sky_catalog(config)
    # Drawn for every source, so that a star's motion depends on nothing else.
    rng = generator(config.seed, Stream.PROPER_MOTION)
    amplitude = np.exp(rng.uniform(*np.log(_PROPER_MOTION_RANGE), size=len(sky)))
    direction = rng.uniform(0.0, 2.0 * np.pi, size=len(sky))
    g = (sky.mag + band_magnitude_offset(config, sky) + offset).astype(np.float32)
    chosen = ~sky.galaxy
    if faint_limit is not None:
        chosen &= g <= faint_limit
    (source_id,) = np.nonzero(chosen)
    # The stored (float32) motions are the ones propagated.
    pmra = (amplitude * np.sin(direction))[chosen].astype(np.float32)
    pmdec = (amplitude * np.cos(direction))[chosen].astype(np.float32)
    obs = visit(index, config.start, config.n_exposures, config.dit, config.ndit)
    years = obs.start.tcb.jyear - REFERENCE_EPOCH
    dec = sky.dec[chosen] - pmdec.astype(float) * years / _MAS_PER_DEG
    ra = (sky.ra[chosen] - pmra.astype(float) * years / _MAS_PER_DEG / np.cos(np.radians(dec))) % 360.0
    g = g[chosen]
    flux_over_error = _flux_over_error(g.astype(float))
    ra_error = 86.0 / flux_over_error
    dec_error = 73.0 / flux_over_error
    values = {
        "source_id": source_id,
        "ra": ra,
        "dec": dec,
        "ra_error": ra_error,
        "dec_error": dec_error,
        "phot_g_mean_mag": g,
        "phot_g_mean_flux_over_error": flux_over_error,
        "phot_bp_mean_mag": g,
        "phot_bp_mean_flux_over_error": 0.075 * flux_over_error,
        "phot_rp_mean_mag": g,
        "phot_rp_mean_flux_over_error": 0.17 * flux_over_error,
        "ref_epoch": REFERENCE_EPOCH,
        "parallax": 0.0,
        "parallax_error": 1.13 * ra_error,
        "pmra": pmra,
        "pmra_error": 1.9 * ra_error,
        "pmdec": pmdec,
        "pmdec_error": 1.8 * dec_error,
        "astrometric_sigma5d_max": 1.78 * ra_error,
        **_CONSTANTS,
    }
    n = len(source_id)
    table = Table(
        [np.broadcast_to(values[name], (n,)).astype(dtype) for name, dtype in REFERENCE_COLUMNS],
        names=[name for name, _ in REFERENCE_COLUMNS],
    )
    primary = fits.Header([SIMULATE_CARD])
    primary["CONTENT"] = ("reference catalogue", "Gaia-DR3-like, of the simulated stars")
    primary["SEED"] = (config.seed, "random seed of the simulation")
    primary["FILTER"] = (config.filter_name, "G, BP, RP hold the AB mag in this filter")
    primary["EPOCH"] = (obs.start.tcb.jyear, "[yr] epoch at which positions are the truth")
    primary["REFEPOCH"] = (REFERENCE_EPOCH, "[yr] epoch of ra, dec (ref_epoch)")
    hdu = fits.table_to_hdu(table)
    hdu.header.add_comment("Synthetic (lsst.obs.vista.sim): G holds the band's AB magnitude, BP-RP = 0.")
    hdu.header.add_comment("Units as Gaia's: ra, dec deg; errors, parallax mas; pm mas/yr.")
    with FitsFile(Path(path), primary) as output:
        output.append(hdu)
    return table
