"""When each synthetic pawprint is observed, and what its files are called.

Stacks are numbered by ``index`` from 0.  Six consecutive indices (0-5,
6-11, ...) are one observation block (OB) observing the six offsets of a
VISTA ``Tile6n`` pattern; each offset is a pawprint of ``n_exposures``
jittered exposures.  Exposures follow each other with a fixed overhead, so
every stack, and every input exposure, starts at its own UTC second and
gets its own exposure ID.
"""

from __future__ import annotations

__all__ = ("OFFSETS_PER_TILE", "Visit", "night_of", "seconds_of_day", "visit")

import dataclasses
import math

from astropy.time import Time, TimeDelta

OFFSETS_PER_TILE = 6
"""Pawprints in a tile (VISTA ``Tile6n`` offset pattern)."""

_EXPOSURE_OVERHEAD = 12.0
"""Seconds between the end of one exposure and the start of the next
(read-out plus jitter move)."""

_OFFSET_OVERHEAD = 25.0
"""Extra seconds for the telescope move between two pawprints."""

_OB_OVERHEAD = 180.0
"""Extra seconds for the acquisition at the start of an OB."""

_FIRST_FILE_NUMBER = 100
"""Running number (``vYYYYMMDD_NNNNN``) of the first exposure of index 0."""

_FIRST_OB_ID = 570190
"""``ESO OBS ID`` of the first OB (that of the template header)."""


@dataclasses.dataclass(frozen=True)
class Visit:
    """Timing, numbering and names of one pawprint stack."""

    index: int
    """Stack index (0-based)."""

    ob: int
    """OB number (0-based): ``index // 6``."""

    offset_index: int
    """Position in the tile's offset sequence, 1-6 (``OFFSET_I``)."""

    exposure_starts: tuple[Time, ...]
    """UTC start of each jittered exposure; the first is the stack's
    DATE-OBS."""

    first_number: int
    """Running number of the first exposure; also its ``OBSNUM``."""

    offset_number: int
    """Running number of the first exposure of the OB (``OFFSTNUM``)."""

    ob_start: Time
    """Start of the OB (``ESO OBS START``), before its acquisition."""

    @property
    def start(self) -> Time:
        """DATE-OBS of the stack (start of its first exposure)."""
        return self.exposure_starts[0]

    @property
    def ob_id(self) -> int:
        """``ESO OBS ID``."""
        return _FIRST_OB_ID + self.ob

    @property
    def night(self) -> str:
        """``YYYYMMDD`` of the night (DATE-OBS minus 12 h), as in file names."""
        return night_of(self.start)

    @property
    def stem(self) -> str:
        """File name stem of the stack, e.g. ``v20120924_00100_st``."""
        return f"v{self.night}_{self.first_number:05d}_st"

    def exposure_names(self) -> list[str]:
        """File names (without extension) of the input exposures."""
        return [
            f"v{night_of(start)}_{self.first_number + k:05d}" for k, start in enumerate(self.exposure_starts)
        ]


def night_of(time: Time) -> str:
    """Return the ``YYYYMMDD`` night of a UTC time (the date 12 h earlier).

    Parameters
    ----------
    time : `astropy.time.Time`
        A UTC time.

    Returns
    -------
    night : `str`
        The night as written in CASU file names.
    """
    return (time - TimeDelta(12 * 3600.0, format="sec")).utc.strftime("%Y%m%d")


def visit(index: int, start: str, n_exposures: int, dit: float, ndit: int) -> Visit:
    """Return the timing and numbering of the stack with a given index.

    Parameters
    ----------
    index : `int`
        Stack index (0-based).
    start : `str`
        UTC ISO time of the start of index 0.
    n_exposures : `int`
        Exposures per stack.
    dit : `float`
        Detector integration time (s).
    ndit : `int`
        DITs per exposure.

    Returns
    -------
    visit : `Visit`
        The stack's visit.
    """
    if index < 0:
        raise ValueError(f"index must not be negative, not {index}")
    exposure_seconds = dit * ndit + _EXPOSURE_OVERHEAD
    stack_seconds = n_exposures * exposure_seconds + _OFFSET_OVERHEAD
    ob_seconds = OFFSETS_PER_TILE * stack_seconds + _OB_OVERHEAD
    ob, offset = divmod(index, OFFSETS_PER_TILE)
    ob_start = Time(start, scale="utc") + TimeDelta(ob * ob_seconds, format="sec")
    first = ob_start + TimeDelta(_OB_OVERHEAD + offset * stack_seconds, format="sec")
    # Round to 0.1 ms, the precision of the DATE-OBS cards, so that the
    # header values are the times themselves.
    first = Time(round(first.mjd * 864e6) / 864e6, format="mjd", scale="utc")
    starts = tuple(first + TimeDelta(k * exposure_seconds, format="sec") for k in range(n_exposures))
    first_number = _FIRST_FILE_NUMBER + index * n_exposures
    if first_number + n_exposures > 99999:
        raise ValueError(f"index {index} is too large for five-digit CASU file numbers")
    return Visit(
        index=index,
        ob=ob,
        offset_index=offset + 1,
        exposure_starts=starts,
        first_number=first_number,
        offset_number=_FIRST_FILE_NUMBER + ob * OFFSETS_PER_TILE * n_exposures,
        ob_start=ob_start,
    )


def seconds_of_day(time: Time) -> float:
    """Return the UTC seconds since midnight of a time (the UTC card)."""
    return math.fmod(time.utc.mjd, 1.0) * 86400.0
