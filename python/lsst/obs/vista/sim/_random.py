"""Independent, reproducible random streams of a simulation.

Every random quantity draws from its own stream keyed by the seed, what it
is, and where it belongs (stack index, detector, exposure), so that making
one detector or one stack never changes the draws of another.
"""

from __future__ import annotations

__all__ = ("Stream", "generator")

import enum

import numpy as np


class Stream(enum.IntEnum):
    """What a random stream is used for."""

    JITTER = 1
    SKY = 2
    CONFIDENCE = 3
    SOURCES = 4
    NOISE = 5
    PROPER_MOTION = 6
    VARIABILITY = 7
    COLOUR = 8


def generator(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """Return the random generator of one stream.

    Parameters
    ----------
    seed : `int`
        Seed of the simulation.
    stream : `Stream`
        What the draws are for.
    *keys : `int`
        Where they belong, e.g. stack index, detector, exposure.

    Returns
    -------
    rng : `numpy.random.Generator`
        A generator that depends on nothing else.
    """
    return np.random.default_rng([seed, int(stream), *keys])
