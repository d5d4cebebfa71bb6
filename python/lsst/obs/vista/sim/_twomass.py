"""A 2MASS-PSC-like reference catalogue of the simulated stars.

The table has the 2MASS Point Source Catalog columns that
`lsst.obs.vista.refcat.TWOMASS_COLUMNS` keeps (``pts_key``, ``ra``,
``dec``, ``err_maj``, ``err_min``, ``j_m``, ``h_m``, ``k_m`` and their
``*_msigcom`` and ``*_snr``, ``jdate``), under the PSC's names and units.
It lists every star of the simulation (galaxies are left out), with
``pts_key`` the ``id`` of the stacks' source truth.

Astrometry
----------
The PSC has no proper motions, so ``ra``, ``dec`` are the stars' true
positions at the stacks' epoch, exact; ``jdate`` is a date of the 2MASS
survey (`TWOMASS_JDATE`).

Photometry (synthetic)
----------------------
Each star has a random 2MASS colour and magnitudes such that the
instrument's colour term for the simulated band (``calibrateImage``'s
``photometry.colorTerms``, as the instrument's config overrides give it)
predicts the star's AB magnitude in the band exactly
(`lsst.obs.vista.sim._colours`).  A fit with that colour term recovers the
true zero point, whatever its coefficients.  The error columns are 2MASS-like: ``*_msigcom =
hypot(0.02, 10**(0.4 (m - 17)))``, S/N from them; the values are exact.
"""

from __future__ import annotations

__all__ = ("TWOMASS_JDATE", "write_twomass_catalog")

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ._colours import twomass_magnitudes
from ._config import SimulationConfig
from ._files import FitsFile
from ._headers import SIMULATE_CARD
from ._sky import sky_catalog

TWOMASS_JDATE = 2451000.5
"""``jdate`` of every star (1998-07-06, within the 2MASS survey)."""

_MAG_PER_RELATIVE_FLUX = 2.5 / np.log(10)


def _error(mag: np.ndarray) -> np.ndarray:
    """Return a 2MASS-like total magnitude error."""
    return np.hypot(0.02, 10.0 ** (0.4 * (mag - 17.0)))


def write_twomass_catalog(
    config: SimulationConfig, path: str | Path, *, faint_limit: float | None = None
) -> Table:
    """Write a 2MASS-PSC-like reference catalogue of the simulated stars.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.
    path : `str` or `pathlib.Path`
        FITS file to write (its directory is created if needed).
    faint_limit : `float`, optional
        Leave out stars fainter than this Ks magnitude (2MASS's 10-sigma
        limit is Ks ~ 14.3); all stars by default.

    Returns
    -------
    table : `astropy.table.Table`
        The rows written, one per star (see the module docstring).

    Raises
    ------
    ValueError
        Raised if the simulated band (and with ``star_colours`` the z band)
        has no Vega-to-AB offset or its instrument no colour term for it.
    """
    sky = sky_catalog(config)
    mags = twomass_magnitudes(config, sky)
    chosen = ~sky.galaxy
    if faint_limit is not None:
        chosen &= mags["k_m"] <= faint_limit
    (pts_key,) = np.nonzero(chosen)
    table = Table()
    table["pts_key"] = pts_key.astype(np.int64)
    table["ra"] = sky.ra[chosen]
    table["dec"] = sky.dec[chosen]
    table["err_maj"] = np.full(len(pts_key), 0.08, dtype=np.float32)
    table["err_min"] = np.full(len(pts_key), 0.06, dtype=np.float32)
    for name in ("j_m", "h_m", "k_m"):
        mag = mags[name][chosen]
        error = _error(mag)
        table[name] = mag.astype(np.float32)
        table[name.replace("_m", "_msigcom")] = error.astype(np.float32)
        table[name.replace("_m", "_snr")] = (_MAG_PER_RELATIVE_FLUX / error).astype(np.float32)
    table["jdate"] = np.full(len(pts_key), TWOMASS_JDATE)
    units = {"ra": "deg", "dec": "deg", "err_maj": "arcsec", "err_min": "arcsec", "jdate": "d"}
    units.update({f"{b}_m": "mag" for b in "jhk"} | {f"{b}_msigcom": "mag" for b in "jhk"})
    for name, unit in units.items():
        table[name].unit = unit
    primary = fits.Header([SIMULATE_CARD])
    primary["CONTENT"] = ("reference catalogue", "2MASS-PSC-like, of the simulated stars")
    primary["SEED"] = (config.seed, "random seed of the simulation")
    primary["FILTER"] = (config.filter_name, "the colour term of this filter gives its AB mag")
    hdu = fits.table_to_hdu(table)
    hdu.header.add_comment("Synthetic (lsst.obs.vista.sim): J, H, Ks with the instrument's colour term")
    hdu.header.add_comment("applied give the band's AB magnitude exactly; positions are the true ones.")
    with FitsFile(Path(path), primary) as output:
        output.append(hdu)
    return table
