"""Metadata translator for VISTA/VIRCAM headers of CASU products."""

from __future__ import annotations

__all__ = ("VircamTranslator",)

from collections.abc import Mapping
from typing import Any

import astropy.units as u
from astro_metadata_translator import cache_translation
from astro_metadata_translator.translators.helpers import tracking_from_degree_headers
from astropy.coordinates import AltAz, Angle, EarthLocation

from .casu import CasuProduct, CasuTranslator

# VISTA on Paranal, as written in every VIRCAM header (ESO TEL GEOLAT/GEOLON/
# GEOELEV).  Fixed here so that translation never needs the network.
_PARANAL_VISTA = EarthLocation.from_geodetic(lon=-70.3976 * u.deg, lat=-24.6157 * u.deg, height=2530.0 * u.m)


class VircamTranslator(CasuTranslator):
    """Translate headers of CASU-reduced VIRCAM products.

    Handles single exposures, pawprint stacks (``*_st.fit``) and tiles
    (``*_st_tl.fit``), either a primary header alone or the primary merged
    with an extension header, plus extension headers on their own (which
    identify the instrument through ``ORIGFILE``).

    Notes
    -----
    Exposure IDs and product kinds: see `CasuTranslator`.

    Exposure time
        CASU normalises pixel values to one DIT ("EXPTIME ... corrected to
        ndit = 1"), so EXPTIME is not the integration time of a product.
        ``exposure_time`` is the sum over the exposures the product
        combines: DIT x NDIT for an exposure, DIT x NDIT x NICOMB for a
        pawprint stack and DIT x NDIT x NJITTER x (number of pawprints) for a
        tile, whose per-pixel depth varies across the mosaic (the confidence
        map gives it).  The time the pixel values refer to (EXPTIME) is
        ``ext_flux_exposure_time``; the number of combined inputs is
        ``ext_ncombine``.  ``datetime_end`` is ``datetime_begin`` plus
        ``exposure_time``: a lower bound for products that combine several
        exposures, since overheads between them are not recorded.
    """

    name = "VIRCAM"
    supported_instrument = "VIRCAM"

    _const_map = {
        "boresight_rotation_coord": "sky",
        "telescope": "VISTA",
        "instrument": "VIRCAM",
        "location": _PARANAL_VISTA,
        "detector_group": "DET1",
    }

    _trivial_map: dict[str, str | list[str] | tuple[Any, ...]] = {
        "object": ("OBJECT", {"default": "UNKNOWN"}),
        "science_program": ("ESO OBS PROG ID", {"default": "UNKNOWN"}),
        "detector_num": "ESO DET CHIP NO",
        "detector_serial": "ESO DET CHIP ID",
        "observation_counter": ("OBSNUM", {"default": 0}),
        "temperature": ("ESO TEL AMBI TEMP", {"unit": u.deg_C, "default": 10.0}),
        "pressure": ("ESO TEL AMBI PRES START", {"unit": u.hPa, "default": 743.0}),
        "relative_humidity": ("ESO TEL AMBI RHUM", {"default": 10.0}),
    }

    _AIRMASS_CARDS = ("ESO TEL AIRM START", "ESO TEL AIRM END")
    _FILTER_CARD = "ESO INS FILT1 NAME"

    @classmethod
    def _can_translate_without_instrume(cls, header: Mapping[str, Any]) -> bool:
        """Recognise VIRCAM extension headers, which carry no INSTRUME, from
        ORIGFILE."""
        return str(header.get("ORIGFILE", "")).startswith("VIRCAM_")

    @cache_translation
    def to_ext_ncombine(self) -> int:
        """Return how many inputs the product combines."""
        match self._product():
            case CasuProduct.PAWPRINT_STACK:
                return int(self._value("NICOMB")) if "NICOMB" in self._header else 1
            case CasuProduct.TILE:
                return len(self._provenance_inputs())
        return 1

    def _stacked_without_provenance(self) -> bool:
        # Docstring inherited.
        return "NICOMB" in self._header

    @cache_translation
    def to_ext_coadds(self) -> int:
        """Return NDIT, the reads averaged into each exposure (CASU divides
        their sum by NDIT); 1 if the header does not say."""
        return int(self._value("ESO DET NDIT")) if self.is_key_ok("ESO DET NDIT") else 1

    @cache_translation
    def to_ext_flux_exposure_time(self) -> float:
        """Return EXPTIME, the time pixel values are normalised to (s)."""
        return float(self._value("EXPTIME"))

    @cache_translation
    def to_exposure_time(self) -> u.Quantity:
        # Docstring inherited.
        single = float(self._value("ESO DET DIT")) * int(self._value("ESO DET NDIT"))
        match self._product():
            case CasuProduct.PAWPRINT_STACK:
                return single * self.to_ext_ncombine() * u.s
            case CasuProduct.TILE:
                return single * int(self._value("NJITTER")) * self.to_ext_ncombine() * u.s
        return single * u.s

    @cache_translation
    def to_observation_id(self) -> str:
        # Docstring inherited.
        return str(self._value("ARCFILE")).removesuffix(".fits") + self._product_suffix()

    @cache_translation
    def to_exposure_group(self) -> str:
        """Return the offset sequence (tile) this product belongs to.

        All pawprints of one tile, and the tile itself, share the OB and the
        first OBSNUM of the offset sequence (OFFSTNUM).
        """
        return f"{self.to_observing_day()}_OB{self._value('ESO OBS ID')}_{self._value('OFFSTNUM')}"

    @cache_translation
    def to_detector_name(self) -> str:
        # Docstring inherited.
        return f"CHIP{self.to_detector_num()}"

    @cache_translation
    def to_detector_unique_name(self) -> str:
        # Docstring inherited.
        return f"DET1.CHIP{self.to_detector_num()}"

    @cache_translation
    def to_observation_type(self) -> str:
        # Docstring inherited.
        dpr_type = str(self._value("ESO DPR TYPE")).upper()
        for word, observation_type in (("DARK", "dark"), ("FLAT", "flat"), ("BIAS", "bias")):
            if word in dpr_type:
                return observation_type
        return "science"

    @cache_translation
    def to_observation_reason(self) -> str:
        # Docstring inherited.
        if not self.is_key_ok("ESO DPR CATG"):
            return "unknown"
        return str(self._value("ESO DPR CATG")).lower()

    @cache_translation
    def to_tracking_radec(self):  # noqa: ANN201 - SkyCoord, as in the base class
        """Return the pointing: RA/DEC, or for a tile its centre.

        A tile's RA/DEC cards are inherited from its first pawprint, a
        tenth of a degree from the mosaic's centre; the tile's WCS
        reference point (CRVAL1/2) is that centre.  Alt/az and airmass stay
        those of the first pawprint, the start of the tile's observation.
        (A tile catalogue's table header has no CRVAL: RA/DEC it is.)
        """
        if self._product() is CasuProduct.TILE and self.is_key_ok("CRVAL1"):
            return tracking_from_degree_headers(self, ("RADECSYS",), (("CRVAL1", "CRVAL2"),))
        return tracking_from_degree_headers(self, ("RADECSYS",), (("RA", "DEC"),))

    @cache_translation
    def to_altaz_begin(self) -> AltAz:
        # Docstring inherited.
        # ESO measures azimuth from the South through the West (S=0, W=90).
        azimuth = (float(self._value("ESO TEL AZ")) + 180.0) % 360.0
        return AltAz(
            az=azimuth * u.deg,
            alt=float(self._value("ESO TEL ALT")) * u.deg,
            obstime=self.to_datetime_begin(),
            location=self.to_location(),
        )

    @cache_translation
    def to_boresight_rotation_angle(self) -> Angle:
        """Return the rotator position angle on the sky (ESO TEL POSANG)."""
        return Angle(float(self._value("ESO TEL POSANG")) * u.deg).wrap_at(360 * u.deg)
