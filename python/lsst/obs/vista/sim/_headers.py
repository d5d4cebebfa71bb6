"""Headers of synthetic CASU products, made from the real ones.

Every header is a copy of a real dump (`._templates`) in which only the
cards that describe this observation are changed: times and numbers,
pointing and WCS, detector identity, noise and photometry, provenance.
"""

from __future__ import annotations

__all__ = (
    "confidence_header",
    "extension_header",
    "primary_header",
    "stack_headers",
    "tile_image_header",
)

import math
import re

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta

from ._config import SimulationConfig
from ._geometry import plate_scale, stack_cd, tile_offset
from ._plan import StackPlan
from ._schedule import OFFSETS_PER_TILE, seconds_of_day
from ._templates import extension_template, primary_template, tile_template

SIMULATE_CARD = ("SIMULATE", True, "synthetic pixels made by lsst.obs.vista.sim")
"""The card that marks a file as synthetic (read as has_simulated_content)."""

# Paranal, as in the ESO TEL GEOLAT/GEOLON cards of every VIRCAM header.
_LATITUDE = -24.6157
_LONGITUDE = -70.3976

# Central wavelengths (nm) of the VIRCAM filters (ESO INS FILT1 WLEN).
_WAVELENGTH = {
    "Z": 900.0,
    "Y": 1020.0,
    "J": 1250.0,
    "H": 1650.0,
    "Ks": 2150.0,
    "NB118": 1185.0,
    "NB980": 980.0,
    "NB990": 990.0,
}

_PROVENANCE = re.compile(r"PROV\d{4}$")


def _isot(time: Time, precision: int) -> str:
    copy = time.utc.copy()
    copy.precision = precision
    return copy.isot


def _sexagesimal(value: float, hours: bool) -> tuple[int, int, float, str]:
    sign = "-" if value < 0 else ""
    amount = abs(value) / 15.0 if hours else abs(value)
    whole = int(amount)
    minutes = int((amount - whole) * 60.0)
    seconds = (amount - whole - minutes / 60.0) * 3600.0
    return whole, minutes, seconds, sign


def _hms_comment(degrees: float, label: str) -> str:
    h, m, s, sign = _sexagesimal(degrees, hours=label == "RA")
    return f"{sign}{h:02d}:{m:02d}:{s:04.1f} {label} (J2000) pointing (deg)"


def _eso_packed(degrees: float, hours: bool) -> float:
    """Return an angle as ESO's packed [+-]HHMMSS.TTT / DDMMSS.TTT number."""
    h, m, s, sign = _sexagesimal(degrees, hours)
    value = h * 10000 + m * 100 + s
    return round(-value if sign else value, 3)


def _time_comment(seconds: float, what: str) -> str:
    h, rest = divmod(seconds, 3600.0)
    m, s = divmod(rest, 60.0)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f} {what} at start (sec)"


def _local_sidereal_seconds(time: Time) -> float:
    """Mean local sidereal time at Paranal (s), from the GMST polynomial
    in UT (UTC is close enough here, and needs no IERS tables)."""
    days = time.utc.jd - 2451545.0
    gmst_hours = 18.697374558 + 24.06570982441908 * days
    return ((gmst_hours + _LONGITUDE / 15.0) % 24.0) * 3600.0


def _altaz(ra: float, dec: float, time: Time) -> tuple[float, float]:
    """Return (altitude, ESO azimuth) in degrees; ESO counts azimuth from
    the South through the West."""
    hour_angle = math.radians(_local_sidereal_seconds(time) / 240.0 - ra)
    lat, delta = math.radians(_LATITUDE), math.radians(dec)
    altitude = math.asin(
        math.sin(lat) * math.sin(delta) + math.cos(lat) * math.cos(delta) * math.cos(hour_angle)
    )
    azimuth = math.atan2(
        -math.cos(delta) * math.sin(hour_angle),
        math.sin(delta) * math.cos(lat) - math.cos(delta) * math.sin(lat) * math.cos(hour_angle),
    )
    return math.degrees(altitude), (math.degrees(azimuth) - 180.0) % 360.0


def _set(header: fits.Header, key: str, value: object, comment: str | None = None) -> None:
    """Change a card that the template has, keeping its place (and its
    comment unless a new one is given)."""
    if key not in header:
        raise KeyError(f"template header has no card {key!r}")
    if comment is None:
        header[key] = value
    else:
        header[key] = (value, comment)


def _set_provenance(header: fits.Header, head: str, entries: list[str]) -> None:
    """Replace the PROV0000... cards: ``head`` then one card per input."""
    for key in [k for k in header if _PROVENANCE.match(k) and k != "PROV0000"]:
        del header[key]
    _set(header, "PROV0000", head)
    position = header.index("PROV0000") + 1
    for number, entry in enumerate(entries, start=1):
        header.insert(position + number - 1, (f"PROV{number:04d}", entry, f"Card # {number}"))


def _observation_number_name(plan: StackPlan) -> str:
    day_of_year = plan.visit.start.utc.datetime.timetuple().tm_yday
    return f"VIRCAM_IMG_OBS{day_of_year:03d}_{plan.visit.first_number:04d}"


def primary_header(plan: StackPlan) -> fits.Header:
    """Return the primary header of a pawprint stack (and of its
    confidence map and catalogue).

    Parameters
    ----------
    plan : `StackPlan`
        The stack.

    Returns
    -------
    header : `astropy.io.fits.Header`
        The real primary header with this stack's observation, plus
        ``SIMULATE = T``.
    """
    config, obs = plan.config, plan.visit
    header = primary_template()
    start = obs.start
    duration = TimeDelta(config.n_exposures * config.dit * config.ndit, format="sec")
    ra, dec = plan.crval
    tile_ra, tile_dec = config.ra % 360.0, config.dec
    utc = seconds_of_day(start)
    lst = _local_sidereal_seconds(start)
    altitude, azimuth = _altaz(ra, dec, start)
    end_altitude, _ = _altaz(ra, dec, start + duration)
    scale = plate_scale(config)
    offset_x, offset_y = (scale * value for value in tile_offset(obs.offset_index, config))
    jitter_x, jitter_y = (scale * value for value in plan.jitter.nominal[0])

    _set(header, "DATE", _isot(obs.exposure_starts[-1] + duration / config.n_exposures, 0))
    _set(header, "RA", round(ra, 6), _hms_comment(ra, "RA"))
    _set(header, "DEC", round(dec, 5), _hms_comment(dec, "DEC"))
    _set(header, "EXPTIME", config.dit)
    _set(header, "MJD-OBS", round(start.utc.mjd, 8))
    _set(header, "DATE-OBS", _isot(start, 4))
    _set(header, "UTC", round(utc, 3), _time_comment(utc, "UTC"))
    _set(header, "LST", round(lst, 3), _time_comment(lst, "LST"))
    _set(header, "ORIGFILE", f"{_observation_number_name(plan)}.fits")
    _set(header, "ESO DET DIT", config.dit)
    _set(header, "ESO DET NDIT", config.ndit)
    _set(header, "ESO INS FILT1 NAME", config.filter_name)
    _set(header, "ESO INS FILT1 WLEN", _WAVELENGTH[config.filter_name])
    _set(header, "ESO OBS ID", obs.ob_id)
    _set(header, "ESO OBS NAME", f"SIM-{config.filter_name}-{config.n_exposures}jitter-tile6_{obs.ob + 1}")
    _set(header, "ESO OBS START", _isot(obs.ob_start, 0))
    _set(header, "ESO OCS REQTIME", config.dit)
    _set(header, "ESO OCS SADT TILE RA", _eso_packed(tile_ra, hours=True))
    _set(header, "ESO OCS SADT TILE DEC", _eso_packed(tile_dec, hours=False))
    _set(header, "ESO OCS TARG ALPHAOBJ", _eso_packed(tile_ra, hours=True))
    _set(header, "ESO OCS TARG DELTAOBJ", _eso_packed(tile_dec, hours=False))
    _set(header, "ESO TEL AIRM START", round(1.0 / math.sin(math.radians(altitude)), 3))
    _set(header, "ESO TEL AIRM END", round(1.0 / math.sin(math.radians(end_altitude)), 3))
    _set(header, "ESO TEL ALT", round(altitude, 3))
    _set(header, "ESO TEL AZ", round(azimuth, 3))
    _set(header, "ESO TEL TARG ALPHA", _eso_packed(ra, hours=True))
    _set(header, "ESO TEL TARG DELTA", _eso_packed(dec, hours=False))
    _set(header, "ESO TPL EXPNO", (obs.offset_index - 1) * config.n_exposures + 1)
    _set(header, "ESO TPL NEXP", OFFSETS_PER_TILE * config.n_exposures)
    _set(header, "ESO TPL START", _isot(obs.ob_start + TimeDelta(60.0, format="sec"), 0))
    _set(header, "JITTER_I", 1)
    _set(header, "JITTER_X", round(jitter_x, 3))
    _set(header, "JITTER_Y", round(jitter_y, 3))
    _set(header, "JITTRNUM", obs.first_number)
    _set(header, "NJITTER", config.n_exposures)
    _set(header, "NOFFSETS", OFFSETS_PER_TILE)
    _set(header, "OBSNUM", obs.first_number)
    _set(header, "OFFSET_I", obs.offset_index)
    _set(header, "OFFSET_X", round(offset_x, 3))
    _set(header, "OFFSET_Y", round(offset_y, 3))
    _set(header, "OFFSTNUM", obs.offset_number)
    _set(header, "REQTIME", config.dit)
    _set(header, "USTEPNUM", obs.first_number)
    _set(header, "ARCFILE", f"VCAM.{_isot(start, 3)}.fits")
    header.append(SIMULATE_CARD, end=True)
    return header


def _detector_position(detector_id: int) -> tuple[int, int]:
    """Return ``ESO DET CHIP X, Y``: real headers label chip 1 (X=1, Y=4)
    and chip 3 (X=1, Y=2), both in the first row of pixel-aligned
    detectors, so X counts rows and Y runs backwards along them."""
    row, column = divmod(detector_id - 1, 4)
    return row + 1, 4 - column


def extension_header(plan: StackPlan, detector_id: int, sky_noise: float) -> fits.Header:
    """Return the header of one detector of a pawprint stack.

    Parameters
    ----------
    plan : `StackPlan`
        The stack.
    detector_id : `int`
        ``ESO DET CHIP NO``.
    sky_noise : `float`
        Value of SKYNOISE (ADU).

    Returns
    -------
    header : `astropy.io.fits.Header`
        The real ``DET1.CHIP1`` header with this detector, pointing,
        provenance and photometry; int32 pixels with BSCALE.
    """
    config, obs = plan.config, plan.visit
    camera = config.camera
    detector = camera.detectors[detector_id]
    noise = plan.noise[detector_id]
    header = extension_template()
    ny, nx = plan.shape
    crpix1, crpix2 = plan.crpix(detector_id)
    chip_x, chip_y = _detector_position(detector_id)
    night, stem = obs.night, obs.stem
    written = _isot(obs.start + TimeDelta(config.dit * config.ndit + 4.0, format="sec"), 4)
    name = _observation_number_name(plan)

    _set(header, "NAXIS1", nx)
    _set(header, "NAXIS2", ny)
    _set(header, "EXTNAME", detector.name)
    _set(header, "DATE", written)
    _set(header, "EXPTIME", config.dit, "Corrected to ndit = 1")
    _set(header, "MJD-OBS", round(obs.start.utc.mjd, 8), f"Obs start {_isot(obs.start, 3)}")
    _set(header, "DATE-OBS", _isot(obs.start, 4))
    _set(header, "CRVAL1", plan.crval[0])
    _set(header, "CRVAL2", plan.crval[1])
    _set(header, "CRPIX1", crpix1)
    _set(header, "CRPIX2", crpix2)
    for (row, column), value in np.ndenumerate(stack_cd(config)):
        _set(header, f"CD{row + 1}_{column + 1}", float(value))
    _set(header, "ORIGFILE", f"{name}_DET{detector_id:02d}.fits")
    _set(header, "ESO DET CHIP ID", detector.serial)
    _set(header, "ESO DET CHIP NO", detector_id)
    _set(header, "ESO DET CHIP NX", config.size)
    _set(header, "ESO DET CHIP NY", config.size)
    _set(header, "ESO DET CHIP X", chip_x)
    _set(header, "ESO DET CHIP Y", chip_y)
    _set(header, "ESO DET DIT", config.dit)
    _set(header, "ESO DET EXP NAME", name)
    _set(header, "ESO DET EXP NO", 622438 + obs.first_number)
    _set(header, "ESO DET EXP UTC", written)
    _set(header, "ESO DET FRAM UTC", written)
    _set(header, "ESO DET NDIT", config.ndit)
    _set(header, "ESO DET WIN NX", config.size)
    _set(header, "ESO DET WIN NY", config.size)
    _set(header, "DARKCOR", f"dark_{night}_{config.dit:g}_1.fit[{detector_id}]")
    _set(header, "FLATCOR", f"{config.filter_name}_flat_{night}.fit[{detector_id}]")
    _set(header, "GAINCOR", noise.gaincor)
    _set(header, "LINCOR", f"chan_comb_{night}.fit[{detector_id}]")
    _set(header, "CIR_CPM", f"{stem}_conf.fit[{detector_id}]")
    _set(header, "SKYLEVEL", plan.sky[detector_id])
    _set(header, "SKYNOISE", round(sky_noise, 2))
    _set(
        header, "SKYSUB", f"Done with sky_{night}_{obs.first_number}_{config.filter_name}.fit[{detector_id}]"
    )
    _set(header, "ELLIPTIC", 0.0)
    _set_provenance(
        header,
        f"{stem}.fit[{detector_id}]: formed from Bi-linear interpolation of:",
        [f"{name}.fit[{detector_id}]" for name in obs.exposure_names()],
    )
    _set(header, "NICOMB", config.n_exposures)
    _set(header, "SEEING", round(plan.seeing, 6))
    _set(header, "MAGZPT", config.magzpt)
    _set(header, "NIGHTZPT", config.magzpt)
    _set(header, "BSCALE", config.bscale)
    return header


def confidence_header(image_header: fits.Header) -> fits.Header:
    """Return the header of a confidence map's extension.

    Parameters
    ----------
    image_header : `astropy.io.fits.Header`
        Header of the matching image extension.

    Returns
    -------
    header : `astropy.io.fits.Header`
        The same cards (EXTNAME, WCS, observation), for int16 percentages:
        without BSCALE and without the pointer to itself (CIR_CPM).
    """
    header = image_header.copy()
    for key in ("BSCALE", "BZERO", "CIR_CPM"):
        header.remove(key, ignore_missing=True)
    header["BITPIX"] = 16
    return header


def stack_headers(index: int, config: SimulationConfig) -> tuple[fits.Header, dict[int, fits.Header]]:
    """Return the headers of a synthetic pawprint stack, without pixels.

    Parameters
    ----------
    index : `int`
        Stack index (0-based); each index is its own observation.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    primary : `astropy.io.fits.Header`
        Primary header.
    extensions : `dict` [`int`, `astropy.io.fits.Header`]
        Image extension header of each configured detector.

    Notes
    -----
    These are the headers `write_pawprint_stack` writes, except SKYNOISE:
    here the noise model's prediction for a fully covered sky pixel with
    flat field 1, there the robust scatter measured on the written pixels
    (they agree to a few percent).
    """
    plan = StackPlan.make(index, config)
    extensions = {
        detector_id: extension_header(plan, detector_id, plan.nominal_sky_noise(detector_id))
        for detector_id in config.detectors
    }
    return primary_header(plan), extensions


def tile_image_header(
    stack_primary: fits.Header,
    stem: str,
    stack_stems: list[str],
    wcs_cards: dict[str, float | str],
    seeing: float,
    config: SimulationConfig,
) -> fits.Header:
    """Return the image header of a tile.

    Parameters
    ----------
    stack_primary : `astropy.io.fits.Header`
        Primary header of the tile's first pawprint stack, whose observation
        cards the tile shares.
    stem : `str`
        File name stem of the tile (``..._st_tl``).
    stack_stems : `list` [`str`]
        Stems of the six pawprint stacks, in offset order.
    wcs_cards : `dict`
        CRVAL, CRPIX and CD cards of the tile's TAN WCS.
    seeing : `float`
        SEEING (pixels).
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    header : `astropy.io.fits.Header`
        The real tile header (``4_cell19``) with this tile's values.
    """
    header = tile_template()
    for key in header:
        if key not in ("", "COMMENT", "HISTORY") and key in stack_primary:
            header[key] = stack_primary[key]
    _set(header, "CIR_CPM", f"{stem}_conf.fit")
    for key, value in wcs_cards.items():
        _set(header, key, value)
    _set_provenance(
        header,
        f"{stem}.fit: formed from Bi-linear interpolation of:",
        [f"{stack}.fit" for stack in stack_stems],
    )
    _set(header, "SEEING", round(seeing, 6))
    _set(header, "ELLIPTIC", 0.0)
    _set(header, "MAGZPT", config.magzpt)
    _set(header, "NIGHTZPT", config.magzpt)
    _set(header, "BSCALE", config.tile_bscale)
    return header
