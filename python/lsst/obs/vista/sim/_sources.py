"""Truth catalogue of the sources on each detector of a pawprint stack.

The truth sidecar of a stack holds, after the pixel truth of each detector,
a table ``SOURCES.DET1.CHIPn`` of every true source whose centre lies on the
detector's stack array (`SOURCE_COLUMNS` says what each column holds), with
the stack's true photometric zero points and PSF in its header cards.
Positions are 0-based pixels of the stack: the centre of ``array[j, i]`` is
``(x=i, y=j)``, the parent coordinates of the ingested stack, whose bounding
box starts at 0; they are the centres the sources were drawn at.
"""

from __future__ import annotations

__all__ = ("SOURCE_COLUMNS", "read_source_truth", "source_truth_hdu", "vega_to_ab", "zero_points")

import math
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from ._colours import band_vega_to_ab
from ._config import SimulationConfig
from ._plan import StackPlan
from ._psf import stack_psf_fwhm
from ._sky import SkyCatalog
from ._stack import StackPixels

SOURCE_COLUMNS = {
    "id": ("", "source number, the same in every product of the simulation"),
    "ra": ("deg", "true right ascension (ICRS), at the epoch of the stack"),
    "dec": ("deg", "true declination"),
    "x": ("pix", "true centre on the stack, 0-based (centre of array[j, i] is x=i)"),
    "y": ("pix", "true centre on the stack, 0-based (centre of array[j, i] is y=j)"),
    "flux": ("adu", "total flux in image units (ADU per DIT, summed over pixels), at MJDMID"),
    "flux_njy": ("nJy", "total flux in nJy (from mag_ab)"),
    "mag_vega": ("mag", "Vega magnitude: ZPVEGA - 2.5 log10(flux)"),
    "mag_ab": ("mag", "AB magnitude: mag_vega + VEGA2AB (NaN if the band has none)"),
    "is_galaxy": ("", "True for an exponential disc, False for a star"),
    "radius": ("pix", "half-light radius along the major axis; 0 for stars"),
    "axis_ratio": ("", "minor over major axis; 1 for stars"),
    "angle": ("deg", "major-axis angle from +x towards +y; 0 for stars"),
    "amplitude": ("mag", "semi-amplitude of a variable's sinusoid in magnitude; 0 if constant"),
    "period": ("d", "period of a variable (variable_magnitude_offset); 1 if constant"),
    "phase": ("rad", "phase of a variable at MJD 0"),
    "psf_fwhm": ("pix", "true stack PSF FWHM at the source (true_psf_fwhm)"),
    "confidence": ("", "stack confidence (percent) at the nearest pixel; 0 = no data"),
    "n_saturated": ("", "exposures saturated among the inputs of the nearest pixel"),
}
"""Columns of a source truth table: unit and meaning."""


def vega_to_ab(config: SimulationConfig) -> float | None:
    """Return m_AB - m_Vega of the simulated band.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation (``filter_name``).

    Returns
    -------
    offset : `float` or `None`
        The ``vegaToAb`` of `lsst.obs.vista.VistaIsrConfig` for the band as
        the instrument's config overrides give it (the offsets the isr
        applies), or `None` where it has none.
    """
    band = config.camera.filters_by_header_name[config.filter_name].band
    return band_vega_to_ab(config.instrument, band)


def zero_points(config: SimulationConfig) -> tuple[float, float | None]:
    """Return the true zero points of the stacks' image units.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    zp_vega : `float`
        ``MAGZPT + 2.5 log10(DIT)``: a source of total flux F (ADU per DIT,
        the stacks' pixel units) has Vega magnitude ``zp_vega - 2.5
        log10(F)``.  The simulated fluxes carry no extinction term.
    zp_ab : `float` or `None`
        ``zp_vega + vega_to_ab``, or `None` where the band has no offset.
    """
    zp_vega = config.magzpt + 2.5 * math.log10(config.dit)
    offset = vega_to_ab(config)
    return zp_vega, None if offset is None else zp_vega + offset


def _psf_cards(plan: StackPlan) -> list[fits.Card]:
    """Return the cards of the true PSF at the centre and the corners of the
    part of the stack that every exposure covers."""
    offsets = plan.jitter.offsets
    low = offsets.max(axis=0)
    high = offsets.min(axis=0) + plan.config.size - 1
    cards = [
        fits.Card("FULLX0", float(low[0]), "[pix] all exposures cover FULLX0 <= x <= FULLX1"),
        fits.Card("FULLX1", float(high[0]), "[pix]"),
        fits.Card("FULLY0", float(low[1]), "[pix] all exposures cover FULLY0 <= y <= FULLY1"),
        fits.Card("FULLY1", float(high[1]), "[pix]"),
    ]
    centre = 0.5 * (low + high)
    points = {"PSFFWCEN": (centre[0], centre[1], "centre")}
    for corner_x, name_x in ((low[0], "0"), (high[0], "1")):
        for corner_y, name_y in ((low[1], "0"), (high[1], "1")):
            points[f"PSFFW{name_x}{name_y}"] = (corner_x, corner_y, f"(FULLX{name_x}, FULLY{name_y})")
    for key, (x, y, where) in points.items():
        fwhm = float(stack_psf_fwhm(plan.config, offsets, x, y))
        cards.append(fits.Card(key, fwhm, f"[pix] true stack PSF FWHM at {where}"))
    return cards


def source_truth_hdu(
    plan: StackPlan,
    detector_id: int,
    wcs: WCS,
    sky: SkyCatalog,
    flux: np.ndarray,
    pixels: StackPixels,
) -> fits.BinTableHDU:
    """Return the truth table of the sources on one detector of a stack.

    Parameters
    ----------
    plan : `StackPlan`
        The stack.
    detector_id : `int`
        ``ESO DET CHIP NO``.
    wcs : `astropy.wcs.WCS`
        WCS of the detector's stack (the one its sources were drawn with).
    sky : `SkyCatalog`
        All sources of the simulation.
    flux : `numpy.ndarray`
        Their fluxes (ADU per DIT).
    pixels : `StackPixels`
        The detector's stack and truth.

    Returns
    -------
    hdu : `astropy.io.fits.BinTableHDU`
        ``SOURCES.DET1.CHIPn``: the columns of `SOURCE_COLUMNS` for every
        source centred on the stack array, and cards of the zero points,
        epoch and PSF.
    """
    config = plan.config
    ny, nx = plan.shape
    x, y = (np.asarray(c) for c in wcs.world_to_pixel_values(sky.ra, sky.dec))
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    on = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    ix, iy = ix[on], iy[on]
    (index,) = np.nonzero(on)
    zp_vega, zp_ab = zero_points(config)
    offset = vega_to_ab(config)
    mag_vega = zp_vega - 2.5 * np.log10(flux[on])
    mag_ab = mag_vega + offset if offset is not None else np.full(len(index), np.nan)
    values = {
        "id": index.astype(np.int64),
        "ra": sky.ra[on],
        "dec": sky.dec[on],
        "x": x[on],
        "y": y[on],
        "flux": flux[on],
        "flux_njy": (mag_ab * u.ABmag).to_value(u.nJy),
        "mag_vega": mag_vega,
        "mag_ab": mag_ab,
        "is_galaxy": sky.galaxy[on],
        "radius": sky.radius[on],
        "axis_ratio": sky.axis_ratio[on],
        "angle": np.degrees(sky.angle[on]),
        "amplitude": sky.amplitude[on],
        "period": sky.period[on],
        "phase": sky.phase[on],
        "psf_fwhm": stack_psf_fwhm(config, plan.jitter.offsets, x[on], y[on]),
        "confidence": pixels.confidence[iy, ix],
        "n_saturated": pixels.saturated[iy, ix],
    }
    table = Table(
        [values[name] for name in SOURCE_COLUMNS],
        names=list(SOURCE_COLUMNS),
        units=[unit or None for unit, _ in SOURCE_COLUMNS.values()],
    )
    hdu = fits.table_to_hdu(table)
    hdu.name = f"SOURCES.DET1.CHIP{detector_id}"
    for name, (_, meaning) in SOURCE_COLUMNS.items():
        hdu.header.add_comment(f"{name}: {meaning}")
    start = plan.visit.start
    cards = [
        fits.Card("DETECTOR", detector_id, "ESO DET CHIP NO"),
        fits.Card("DATE-OBS", start.utc.isot, "DATE-OBS of the stack (the sources' epoch)"),
        fits.Card("MJD-OBS", start.utc.mjd, "MJD-OBS of the stack"),
        fits.Card("MJDMID", plan.midpoint_mjd, "UTC MJD at which the stack sees variables"),
        fits.Card("EPOCH", start.tcb.jyear, "[yr] Julian epoch (TCB) of the positions"),
        fits.Card("MAGZPT", config.magzpt, "mag = MAGZPT - 2.5 log10(flux/EXPTIME), true"),
        fits.Card("ZPVEGA", zp_vega, "[mag] Vega mag of 1 ADU/DIT: MAGZPT+2.5log DIT"),
    ]
    if zp_ab is not None:
        cards.append(fits.Card("VEGA2AB", offset, "[mag] m_AB - m_Vega (the isr's vegaToAb)"))
        cards.append(fits.Card("ZPAB", zp_ab, "[mag] AB mag of 1 ADU/DIT: ZPVEGA+VEGA2AB"))
    cards.append(fits.Card("PSFVAR", config.psf_variation, "exposure PSF FWHM change, centre to corner"))
    cards.extend(_psf_cards(plan))
    for card in cards:
        hdu.header.append(card, end=True)
    return hdu


def read_source_truth(truth: str | Path, detector_id: int) -> Table:
    """Read the true sources of one detector of a pawprint stack.

    Parameters
    ----------
    truth : `str` or `pathlib.Path`
        The stack's truth sidecar (`SimulatedStack.truth`).
    detector_id : `int`
        ``ESO DET CHIP NO``.

    Returns
    -------
    sources : `astropy.table.Table`
        The `SOURCE_COLUMNS`, with units; ``meta`` holds the table's cards
        (``ZPVEGA``, ``ZPAB``, ``EPOCH``, ``PSFFWCEN`` ...).
    """
    return Table.read(truth, hdu=f"SOURCES.DET1.CHIP{detector_id}")
