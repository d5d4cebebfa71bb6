"""Metadata translator for UKIRT/WFCAM headers of CASU products."""

from __future__ import annotations

__all__ = ("WfcamTranslator",)

import math
from typing import Any

import astropy.units as u
from astro_metadata_translator import cache_translation
from astropy.coordinates import AltAz, Angle, EarthLocation, SkyCoord

from .casu import CasuProduct, CasuTranslator

# UKIRT on Mauna Kea (19 deg 49' 20.75" N, 155 deg 28' 13.18" W, 4198 m); WFCAM
# headers do not carry the site.  Fixed here so that translation never needs
# the network.
_UKIRT = EarthLocation.from_geodetic(lon=-155.47033 * u.deg, lat=19.82243 * u.deg, height=4198.0 * u.m)

_OBSERVATION_TYPES = {
    "OBJECT": "science",
    "SKY": "science",
    "DARK": "dark",
    "BIAS": "bias",
    "SKYFLAT": "flat",
    "DOMEFLAT": "flat",
    "FOCUS": "focus",
}
"""OBSTYPE values (the header's own list) and their observation types."""


class WfcamTranslator(CasuTranslator):
    """Translate headers of CASU-reduced UKIRT/WFCAM products.

    Handles CASU's multi-extension files (one image per camera, each with
    CAMNUM) merged with their primary header, and a WFCAM Science Archive
    cutout (one image HDU ``WSAIMAGE`` with CAMNUM and CASU's cards).

    Notes
    -----
    Exposure IDs and product kinds: see `CasuTranslator`.

    Exposure time
        Pixel values refer to one exposure of EXP_TIME seconds
        (``ext_flux_exposure_time``, the time MAGZPT is given for).  An
        interleaved frame (``_sf``) is NUSTEP microstepped exposures woven
        onto a grid of half the pixel size, so each of its pixels comes from
        one exposure; a stack averages the frames its PROV cards list
        (``ext_ncombine``; NJITTER if it lists none).  ``exposure_time`` is
        the total integration: EXP_TIME x NEXP x NINT x NUSTEP x
        ``ext_ncombine``.  ``ext_coadds`` is NEXP x NINT, taken to be
        averaged into one exposure's pixel values as VIRCAM's NDIT are
        (UKIDSS uses NEXP = NINT = 1, where both readings agree).
    Pointing
        RABASE (hours) and DECBASE, the base position of the jitter
        pattern; alt/az from the hour angle HABASE at UKIRT's latitude (no
        time-dependent transformation, so no IERS tables are needed).
        UKIRT is equatorially mounted and WFCAM has no rotator: the position
        angle is 0.
    """

    name = "WFCAM"
    supported_instrument = "WFCAM"

    _const_map = {
        "boresight_rotation_coord": "sky",
        "boresight_rotation_angle": Angle(0.0 * u.deg),
        "telescope": "UKIRT",
        "instrument": "WFCAM",
        "location": _UKIRT,
    }

    _trivial_map: dict[str, str | list[str] | tuple[Any, ...]] = {
        "object": ("OBJECT", {"default": "UNKNOWN"}),
        "science_program": ("PROJECT", {"default": "UNKNOWN"}),
        "detector_num": "CAMNUM",
        "detector_serial": ("DETECTID", {"default": "unknown"}),
        "observation_counter": ("OBSNUM", {"default": 0}),
        "temperature": ("AIRTEMP", {"unit": u.deg_C, "default": 0.0}),
        "pressure": ("BARPRESS", {"unit": u.hPa, "default": 615.0}),
        "relative_humidity": ("HUMIDITY", {"default": 10.0}),
    }

    _AIRMASS_CARDS = ("AMSTART", "AMEND")
    _FILTER_CARD = "FILTER"

    @cache_translation
    def to_ext_ncombine(self) -> int:
        """Return how many interleaved frames a stack averages."""
        if self._product() is CasuProduct.EXPOSURE:
            return 1
        inputs = self._provenance_inputs()
        return len(inputs) if inputs else int(self._value("NJITTER"))

    @cache_translation
    def to_ext_coadds(self) -> int:
        """Return NEXP x NINT (1 for each card the header lacks)."""
        return int(self._header.get("NEXP", 1)) * int(self._header.get("NINT", 1))

    @cache_translation
    def to_ext_subsampling(self) -> int:
        """Return the interleave factor of a stack: sqrt(NUSTEP) (2 for a
        2x2 microstep pattern), 1 for a single exposure."""
        if self._product() is CasuProduct.EXPOSURE:
            return 1
        return max(round(math.sqrt(int(self._header.get("NUSTEP", 1)))), 1)

    @cache_translation
    def to_ext_flux_exposure_time(self) -> float:
        """Return EXP_TIME, the time pixel values are normalised to (s)."""
        return float(self._value("EXP_TIME"))

    @cache_translation
    def to_exposure_time(self) -> u.Quantity:
        # Docstring inherited.
        single = self.to_ext_flux_exposure_time() * self.to_ext_coadds()
        if self._product() is CasuProduct.EXPOSURE:
            return single * u.s
        return single * int(self._header.get("NUSTEP", 1)) * self.to_ext_ncombine() * u.s

    @cache_translation
    def to_observation_id(self) -> str:
        # Docstring inherited.
        return f"w{self._value('UTDATE')}_{int(self._value('OBSNUM')):05d}{self._product_suffix()}"

    @cache_translation
    def to_exposure_group(self) -> str:
        """Return the group the observation belongs to (UTDATE and GRPNUM,
        shared by the members of a jitter and microstep sequence)."""
        return f"{self._value('UTDATE')}_{self._value('GRPNUM')}"

    @cache_translation
    def to_detector_name(self) -> str:
        # Docstring inherited.
        return f"CAM{self.to_detector_num()}"

    @cache_translation
    def to_detector_unique_name(self) -> str:
        # Docstring inherited.
        return self.to_detector_name()

    @cache_translation
    def to_detector_group(self) -> None:
        """Return `None`: the four cameras form no groups."""
        return None

    @cache_translation
    def to_observation_type(self) -> str:
        # Docstring inherited.
        return _OBSERVATION_TYPES.get(str(self._value("OBSTYPE")).upper(), "unknown")

    @cache_translation
    def to_observation_reason(self) -> str:
        # Docstring inherited.
        return "science" if self.to_observation_type() == "science" else "calibration"

    @cache_translation
    def to_tracking_radec(self) -> SkyCoord:
        """Return the base position of the jitter pattern (RABASE in hours,
        DECBASE), in the RADESYS frame at EQUINOX, as ICRS."""
        frame = str(self._header.get("RADESYS", "FK5")).strip().lower()
        equinox = f"J{float(self._header.get('EQUINOX', 2000.0)):.1f}"
        position = SkyCoord(
            ra=float(self._value("RABASE")) * 15.0 * u.deg,
            dec=float(self._value("DECBASE")) * u.deg,
            frame=frame,
            **({"equinox": equinox} if frame == "fk5" else {}),
        )
        return position.transform_to("icrs")

    @cache_translation
    def to_altaz_begin(self) -> AltAz:
        # Docstring inherited.
        hour_angle = math.radians(float(self._value("HABASE")))
        dec = math.radians(float(self._value("DECBASE")))
        latitude = _UKIRT.lat.to_value(u.rad)
        altitude = math.asin(
            math.sin(latitude) * math.sin(dec) + math.cos(latitude) * math.cos(dec) * math.cos(hour_angle)
        )
        # Azimuth from the North through the East.
        azimuth = math.atan2(
            -math.cos(dec) * math.sin(hour_angle),
            math.sin(dec) * math.cos(latitude) - math.cos(dec) * math.sin(latitude) * math.cos(hour_angle),
        )
        return AltAz(
            az=math.degrees(azimuth) % 360.0 * u.deg,
            alt=math.degrees(altitude) * u.deg,
            obstime=self.to_datetime_begin(),
            location=self.to_location(),
        )
