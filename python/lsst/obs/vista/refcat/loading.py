"""Reference stars for one observation: shards concatenated, checked and
propagated to the observation's epoch."""

from __future__ import annotations

__all__ = ("UNKNOWN_PROPER_MOTION", "load_reference_stars")

from collections.abc import Mapping

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table, unique, vstack
from astropy.time import Time

from lsst.sphgeom import Region

from .pixelization import REFCAT_DIMENSION
from .schema import GAIA_COLUMNS, TWOMASS_COLUMNS, standardize_columns

UNKNOWN_PROPER_MOTION = 10 * u.mas / u.yr
"""Per-axis proper-motion uncertainty assumed for a star without one (a Gaia
two-parameter solution): such stars are faint (median G ≈ 20.8 in the
bundled Gaia chunks), and the G > 19.5 stars of those chunks that have a
proper motion scatter by 4-18 mas/yr per axis."""

_MAG_PER_RELATIVE_FLUX = 2.5 / np.log(10)
"""Magnitude error per unit relative flux error (derivative of Pogson's
law)."""

_BANDS = ("g", "bp", "rp")

_TWOMASS_BANDS = ("j", "h", "k")


def load_reference_stars(
    shards: Mapping[int, Table],
    *,
    epoch: Time,
    region: Region | None = None,
    name: str = "gaia_dr3",
    unknown_proper_motion: u.Quantity = UNKNOWN_PROPER_MOTION,
) -> Table:
    r"""Return the reference stars of some shards at an observation's epoch.

    Parameters
    ----------
    shards : `~collections.abc.Mapping` [`int`, `astropy.table.Table`]
        Shards keyed by htm7 trixel, as ``butler ingest-refcat`` writes them:
        Gaia-like (`GAIA_COLUMNS`), or 2MASS-like (`TWOMASS_COLUMNS`,
        recognised by their ``jdate`` column).
    epoch : `astropy.time.Time`
        Epoch of the observation.
    region : `lsst.sphgeom.Region`, optional
        Keep only the stars inside this region at ``epoch`` (e.g. a
        detector's polygon, padded by the caller for WCS errors).
    name : `str`, optional
        Dataset type name of the catalogue, for error messages.
    unknown_proper_motion : `astropy.units.Quantity`, optional
        Per-axis proper-motion uncertainty assumed for stars without a
        proper motion, by which their position errors grow with time.

    Returns
    -------
    stars : `astropy.table.Table`
        One row per ``source_id`` (a star found in several shards keeps
        the row of the first), sorted by ``id``, with columns

        ``id``
            Gaia ``source_id``.
        ``coord_ra``, ``coord_dec`` (deg)
            ICRS position at ``epoch``.
        ``coord_raErr``, ``coord_decErr`` (mas)
            Errors of :math:`\alpha\cos\delta` and :math:`\delta` at
            ``epoch``: the catalogue errors and the proper-motion errors
            times the time elapsed, added in quadrature (correlations are
            not in the shards).
        ``pm_ra``, ``pm_dec``, ``pm_raErr``, ``pm_decErr`` (mas/yr)
            Proper motion (``pm_ra`` includes :math:`\cos\delta`); 0 and
            ``unknown_proper_motion`` where the catalogue has none.
        ``pm_flag``
            `True` where the catalogue has no proper motion: the position
            is the catalogue's, unmoved, and its errors grow by
            ``unknown_proper_motion`` times the time elapsed.
        ``parallax``, ``parallaxErr`` (mas)
            Masked where unknown.  Annual parallax is not applied to the
            positions: it depends on the observer's place in its orbit, and
            is below 1 mas for most stars of this depth.
        ``ref_epoch`` (yr)
            Catalogue epoch (Julian year, TCB).
        ``phot_g_mean_mag``, ``phot_bp_mean_mag``, ``phot_rp_mean_mag`` (mag)
            Gaia (Vega) magnitudes, masked where unknown, and their errors
            ``phot_*_mean_magErr`` (mag) from the flux signal-to-noise.

        A 2MASS-like catalogue has no proper motions: its stars keep their
        catalogue positions (``pm_flag`` is `True`), whose errors are
        ``err_maj`` on both axes grown by ``unknown_proper_motion`` times
        the time since ``jdate`` (``ref_epoch``); its photometry columns
        are ``j_m``, ``h_m``, ``k_m`` (2MASS Vega mag, masked where
        unknown) and their errors ``j_mErr``, ``h_mErr``, ``k_mErr``
        (``*_msigcom``).

        ``meta["epoch"]`` is ``epoch`` in ISO format (TAI).

    Raises
    ------
    RefcatSchemaError
        Raised if a shard lacks a column or has one of the wrong type or
        unit; one line naming the catalogue and the shard's trixel.
    """
    twomass = any("jdate" in shard.colnames for shard in shards.values())
    columns = TWOMASS_COLUMNS if twomass else GAIA_COLUMNS
    tables = [
        standardize_columns(
            shard, f"{name} shard {REFCAT_DIMENSION}={trixel}", units_given=True, columns=columns
        )
        for trixel, shard in shards.items()
    ]
    if tables:
        catalog = unique(vstack(tables, join_type="exact"), keys="source_id", keep="first")
    else:
        catalog = Table(
            [
                MaskedColumn(np.zeros(0, spec.dtype), name=column, unit=spec.unit)
                for column, spec in columns.items()
            ]
        )
    propagate = _unmoved if twomass else _propagate
    stars = propagate(catalog, epoch, unknown_proper_motion)
    if region is not None:
        inside = region.contains(np.radians(stars["coord_ra"].value), np.radians(stars["coord_dec"].value))
        stars = stars[np.asarray(inside, dtype=bool)]
    stars.meta["epoch"] = epoch.tai.isot
    return stars


def _propagate(catalog: Table, epoch: Time, unknown_proper_motion: u.Quantity) -> Table:
    """Move each star along its proper motion to ``epoch``; the table of
    `load_reference_stars`."""
    pm_known = ~(np.ma.getmaskarray(catalog["pmra"]) | np.ma.getmaskarray(catalog["pmdec"]))
    pm_ra = np.where(pm_known, np.ma.getdata(catalog["pmra"]).astype(float), 0.0) * u.mas / u.yr
    pm_dec = np.where(pm_known, np.ma.getdata(catalog["pmdec"]).astype(float), 0.0) * u.mas / u.yr
    unknown = unknown_proper_motion.to(u.mas / u.yr)
    pm_ra_err = np.where(pm_known, np.ma.getdata(catalog["pmra_error"]), unknown.value) * u.mas / u.yr
    pm_dec_err = np.where(pm_known, np.ma.getdata(catalog["pmdec_error"]), unknown.value) * u.mas / u.yr
    ref_epoch = Time(np.asarray(catalog["ref_epoch"], dtype=float), format="jyear", scale="tcb")
    elapsed = (epoch.tcb - ref_epoch).to(u.yr)
    start = SkyCoord(ra=np.asarray(catalog["ra"]) * u.deg, dec=np.asarray(catalog["dec"]) * u.deg)
    # Along the great circle whose bearing the proper motion gives.
    moved = start.directional_offset_by(
        np.arctan2(pm_ra.value, pm_dec.value) * u.rad, np.hypot(pm_ra, pm_dec) * elapsed
    )
    ra_err = np.hypot(catalog["ra_error"].quantity, pm_ra_err * elapsed).to(u.mas)
    dec_err = np.hypot(catalog["dec_error"].quantity, pm_dec_err * elapsed).to(u.mas)
    stars = Table()
    stars["id"] = np.asarray(catalog["source_id"])
    stars["coord_ra"] = moved.ra.to(u.deg)
    stars["coord_dec"] = moved.dec.to(u.deg)
    stars["coord_raErr"] = ra_err
    stars["coord_decErr"] = dec_err
    stars["pm_ra"] = pm_ra
    stars["pm_dec"] = pm_dec
    stars["pm_raErr"] = pm_ra_err
    stars["pm_decErr"] = pm_dec_err
    stars["pm_flag"] = ~pm_known
    stars["parallax"] = catalog["parallax"]
    stars["parallaxErr"] = catalog["parallax_error"]
    stars["ref_epoch"] = catalog["ref_epoch"].quantity
    for band in _BANDS:
        magnitude = catalog[f"phot_{band}_mean_mag"]
        signal_to_noise = catalog[f"phot_{band}_mean_flux_over_error"]
        stars[f"phot_{band}_mean_mag"] = magnitude
        with np.errstate(divide="ignore"):
            error = _MAG_PER_RELATIVE_FLUX / np.ma.getdata(signal_to_noise)
        stars[f"phot_{band}_mean_magErr"] = MaskedColumn(
            error, mask=np.ma.getmaskarray(magnitude) | ~(np.isfinite(error) & (error > 0)), unit=u.mag
        )
    return stars


def _unmoved(catalog: Table, epoch: Time, unknown_proper_motion: u.Quantity) -> Table:
    """Return the stars of a 2MASS-like catalogue, which has no proper
    motions, at their catalogue positions; the table of
    `load_reference_stars`."""
    n = len(catalog)
    ref_epoch = Time(np.asarray(catalog["jdate"], dtype=float), format="jd", scale="utc")
    elapsed = (epoch.utc - ref_epoch).to(u.yr)
    unknown = unknown_proper_motion.to(u.mas / u.yr)
    error = np.hypot(catalog["err_maj"].quantity, unknown * elapsed).to(u.mas)
    stars = Table()
    stars["id"] = np.asarray(catalog["source_id"])
    stars["coord_ra"] = np.asarray(catalog["ra"], dtype=float) * u.deg
    stars["coord_dec"] = np.asarray(catalog["dec"], dtype=float) * u.deg
    stars["coord_raErr"] = error
    stars["coord_decErr"] = error
    stars["pm_ra"] = np.zeros(n) * u.mas / u.yr
    stars["pm_dec"] = np.zeros(n) * u.mas / u.yr
    stars["pm_raErr"] = np.full(n, unknown.value) * unknown.unit
    stars["pm_decErr"] = np.full(n, unknown.value) * unknown.unit
    stars["pm_flag"] = np.ones(n, dtype=bool)
    stars["parallax"] = MaskedColumn(np.zeros(n, np.float32), mask=True, unit=u.mas)
    stars["parallaxErr"] = MaskedColumn(np.zeros(n, np.float32), mask=True, unit=u.mas)
    stars["ref_epoch"] = ref_epoch.jyear * u.yr
    for band in _TWOMASS_BANDS:
        stars[f"{band}_m"] = catalog[f"{band}_m"]
        error = catalog[f"{band}_msigcom"]
        stars[f"{band}_mErr"] = MaskedColumn(
            np.ma.getdata(error),
            mask=np.ma.getmaskarray(error) | np.ma.getmaskarray(catalog[f"{band}_m"]),
            unit=u.mag,
        )
    return stars
