"""What the header translators of CASU products share: the product kinds,
exposure IDs and the time pixel values refer to."""

from __future__ import annotations

__all__ = ("CasuProduct", "CasuTranslator")

import enum
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import astropy.time
import astropy.units as u
from astro_metadata_translator import cache_translation
from astro_metadata_translator.properties import PropertyDefinition
from astro_metadata_translator.translators.fits import FitsTranslator

_TILE_NAME = re.compile(r"_st_tl(_conf|_cat)?\.fits?(\.fz)?$")
_STACK_NAME = re.compile(r"_st(_conf|_cat)?\.fits?(\.fz)?$")


class CasuProduct(enum.IntEnum):
    """Kind of CASU product a header belongs to.

    The value is the last digit of the exposure ID, which is what keeps a
    stack, its tile and its first single exposure (all of which share
    DATE-OBS) apart.
    """

    EXPOSURE = 0
    PAWPRINT_STACK = 1
    TILE = 2


_PRODUCT_SUFFIXES = {CasuProduct.EXPOSURE: "", CasuProduct.PAWPRINT_STACK: "_st", CasuProduct.TILE: "_st_tl"}
"""What CASU appends to the archive name of a product's input for each kind."""


class CasuTranslator(FitsTranslator):
    """Base of the translators of CASU-reduced products (VIRCAM, WFCAM).

    Subclasses name the instrument and read its own cards; this class gives
    what CASU's pipeline family does the same way for all of them.

    Notes
    -----
    Exposure IDs
        ``YYYYMMDD`` (UTC date of DATE-OBS) followed by the five-digit UTC
        second of the day and one digit for the `CasuProduct`, e.g. the
        stack that starts at 2012-09-25T08:05:26.56 is ``20120925291261``.
        A stack, its tile and its first exposure share DATE-OBS and differ
        in the last digit.  ``detector_exposure_id`` is
        ``exposure_id * 100 + detector``.
    Product kind
        From the provenance (PROV0000) and confidence-map (CIR_CPM) cards,
        else from the file name (``*_st.fit`` stacks, ``*_st_tl.fit`` tiles).
    Airmass
        The mean of the airmass cards at the start and end of the
        observation (`_AIRMASS_CARDS`), the start's alone if the end's is
        absent.
    """

    _AIRMASS_CARDS: ClassVar[tuple[str, str]]
    """Cards of the airmass at the start and end of the observation."""

    _FILTER_CARD: ClassVar[str]
    """Card of the filter's header name; the physical filter is
    ``<instrument>-<header name>``."""

    extensions = {
        "product": PropertyDefinition("CASU product kind (exposure, pawprint_stack, tile).", str),
        "ncombine": PropertyDefinition("Number of exposures or pawprints combined in the product.", int),
        "flux_exposure_time": PropertyDefinition(
            "Exposure time (s) that pixel values are normalised to (EXPTIME).", float
        ),
        "coadds": PropertyDefinition(
            "Number of reads averaged into one input exposure's pixel values (NDIT, NEXP).", int
        ),
        "subsampling": PropertyDefinition(
            "Image pixels per detector pixel along each axis (2 for a 2x2 microstep interleave).", int
        ),
    }

    @classmethod
    def can_translate(cls, header: Mapping[str, Any], filename: str | None = None) -> bool:
        """Recognise the instrument from INSTRUME, or where a header has no
        INSTRUME card (an extension header alone) from
        `_can_translate_without_instrume`.

        Parameters
        ----------
        header : `dict`-like
            Header to examine.
        filename : `str`, optional
            Name of the file the header came from.

        Returns
        -------
        can : `bool`
            `True` if this is a header of the translator's instrument.
        """
        if "INSTRUME" in header:
            return str(header["INSTRUME"]).strip().upper() == cls.supported_instrument
        return cls._can_translate_without_instrume(header)

    @classmethod
    def _can_translate_without_instrume(cls, header: Mapping[str, Any]) -> bool:
        """Whether a header without INSTRUME is the instrument's (no, unless
        a subclass knows another card that says so)."""
        return False

    @classmethod
    def observing_date_to_offset(cls, observing_date: astropy.time.Time) -> astropy.time.TimeDelta:
        """Return the 12 h offset that gives the night of the CASU file-name
        date (vYYYYMMDD, wYYYYMMDD), as for Rubin and DECam.

        Parameters
        ----------
        observing_date : `astropy.time.Time`
            Time of the observation (unused: the offset is constant).

        Returns
        -------
        offset : `astropy.time.TimeDelta`
            Twelve hours.
        """
        return astropy.time.TimeDelta(12 * 3600, format="sec", scale="tai")

    def _value(self, key: str) -> Any:
        """Return a card's value, stripped if it is a string, and record its
        use; raise `KeyError` naming the card if absent."""
        if not self.is_key_ok(key):
            raise KeyError(f"{self._log_prefix}: card {key!r} is missing")
        self._used_these_cards(key)
        value = self._header[key]
        return value.strip() if isinstance(value, str) else value

    @cache_translation
    def to_ext_product(self) -> str:
        """Return the CASU product kind as a lower-case string."""
        return self._product().name.lower()

    def _stacked_without_provenance(self) -> bool:
        """Whether cards other than PROV0000 and CIR_CPM say the header is a
        pawprint stack's (VIRCAM's NICOMB)."""
        return False

    def _product(self) -> CasuProduct:
        # Products announce themselves through their provenance and
        # confidence-map cards; a primary header alone is identical for a
        # stack and its first exposure, so the file name decides there.
        clues = " ".join(str(self._header.get(key, "")) for key in ("PROV0000", "CIR_CPM"))
        if "_st_tl" in clues:
            return CasuProduct.TILE
        if self._stacked_without_provenance() or "_st.fit" in clues or "_st_conf" in clues:
            return CasuProduct.PAWPRINT_STACK
        name = self.filename or ""
        if _TILE_NAME.search(name):
            return CasuProduct.TILE
        if _STACK_NAME.search(name):
            return CasuProduct.PAWPRINT_STACK
        return CasuProduct.EXPOSURE

    def _product_suffix(self) -> str:
        """Return what the product's kind appends to its input's archive
        name: nothing, ``_st`` (stack) or ``_st_tl`` (tile)."""
        return _PRODUCT_SUFFIXES[self._product()]

    def _provenance_inputs(self) -> list[str]:
        """Return the inputs a product lists in PROV0001, PROV0002 ..."""
        return [str(value) for key, value in self._header.items() if re.fullmatch(r"PROV0*[1-9]\d*", key)]

    @cache_translation
    def to_ext_subsampling(self) -> int:
        """Return 1: pixels at the detector's pitch, unless a subclass's
        products are interleaved."""
        return 1

    @cache_translation
    def to_boresight_airmass(self) -> float:
        # Docstring inherited.
        start_key, end_key = self._AIRMASS_CARDS
        start = float(self._value(start_key))
        if self.is_key_ok(end_key):
            return 0.5 * (start + float(self._value(end_key)))
        return start

    @cache_translation
    def to_physical_filter(self) -> str:
        # Docstring inherited.
        return f"{self.supported_instrument}-{self._value(self._FILTER_CARD)}"

    @cache_translation
    def to_can_see_sky(self) -> bool:
        # Docstring inherited.
        return self.to_observation_type() not in ("dark", "bias")

    @cache_translation
    def to_dark_time(self) -> u.Quantity:
        # Docstring inherited.
        return self.to_exposure_time()

    @cache_translation
    def to_datetime_begin(self) -> astropy.time.Time:
        # Docstring inherited.
        return self._from_fits_date("DATE-OBS", mjd_key="MJD-OBS", scale="utc")

    @cache_translation
    def to_datetime_end(self) -> astropy.time.Time:
        # Docstring inherited.
        return self.to_datetime_begin() + self.to_exposure_time()

    @cache_translation
    def to_exposure_id(self) -> int:
        # Docstring inherited.
        begin = self.to_datetime_begin().utc
        year, month, day, hour, minute, second = begin.ymdhms
        second_of_day = int(hour) * 3600 + int(minute) * 60 + int(math.floor(second))
        return (
            (int(year) * 10000 + int(month) * 100 + int(day)) * 1_000_000
            + second_of_day * 10
            + int(self._product())
        )

    @cache_translation
    def to_visit_id(self) -> int:
        # Docstring inherited.
        return self.to_exposure_id()

    @cache_translation
    def to_detector_exposure_id(self) -> int:
        # Docstring inherited.
        return self.to_exposure_id() * 100 + self.to_detector_num()

    @cache_translation
    def to_has_simulated_content(self) -> bool:
        """Return `True` for files made by `lsst.obs.vista.sim` (SIMULATE=T)."""
        return bool(self._header.get("SIMULATE", False))
