"""How a calibrateImage step says what it could not do: one log line and
one ``SKIPPED_<STEP>`` key in the output's metadata, with the same text."""

from __future__ import annotations

__all__ = ("SKIPPED_PREFIX", "say_skipped")

import logging

from lsst.utils.logging import LsstLoggers

SKIPPED_PREFIX = "SKIPPED_"
"""Prefix of the metadata keys naming what a step could not do, as
``MISSING_`` names the optional inputs that were absent."""


def say_skipped(
    log: LsstLoggers, name: str, step: str, text: str, *, level: int = logging.INFO
) -> dict[str, str]:
    """Log what a step could not do and return its metadata entry.

    Parameters
    ----------
    log : `lsst.utils.logging.LsstLoggers`
        Logger of the step.
    name : `str`
        What to call the exposure in the log line.
    step : `str`
        Upper-case name of what was not done (``PSF``, ``ASTROMETRY``...),
        the key's suffix.
    text : `str`
        Why, and what the output has instead (``"2 PSF stars (<
        minStars=5); keeping the header PSF"``); whitespace runs become one
        space, so that it stays one line and one header card.
    level : `int`, optional
        Level of the log line: INFO where the input simply holds too little
        (a small or empty field), WARNING where a fit failed.

    Returns
    -------
    metadata : `dict` [`str`, `str`]
        ``{"SKIPPED_<step>": text}``; the log line is ``"<name>: <text>."``.
    """
    text = " ".join(text.split())
    log.log(level, "%s: %s.", name, text)
    return {f"{SKIPPED_PREFIX}{step}": text}
