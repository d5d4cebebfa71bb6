"""The Lanczos kernel of the resampling: its order and its normalised
weights at a position."""

from __future__ import annotations

__all__ = ("LANCZOS_ORDER", "lanczos_weights")

import numba
import numpy as np

LANCZOS_ORDER = 3
"""Order ``a`` of the Lanczos kernel ``sinc(x) sinc(x / a)``: 2a taps per axis."""


_TAP_ANGLES = np.pi * np.arange(1 - LANCZOS_ORDER, LANCZOS_ORDER + 1) / LANCZOS_ORDER
_COS_TAP = np.cos(_TAP_ANGLES)
_SIN_TAP = np.sin(_TAP_ANGLES)
"""cos and sin of pi m / a for the taps m = 1 - a ... a."""


@numba.njit(cache=True, nogil=True)
def lanczos_weights(offset: float, weights: np.ndarray) -> None:
    """Fill ``weights`` with the Lanczos weights of a position's taps.

    Parameters
    ----------
    offset : `float`
        Fractional part of the position ``x`` (``x - floor(x)``, in [0, 1)).
    weights : `numpy.ndarray`
        Output, ``2 LANCZOS_ORDER`` values: weight ``k`` is that of the
        input pixel ``floor(x) - LANCZOS_ORDER + 1 + k``; they sum to 1.
    """
    a = LANCZOS_ORDER
    # With d = offset - m for the tap m = k - a + 1, sin(pi d) is
    # (-1)**m sin(pi offset) and sin(pi d / a) follows from the angle
    # difference: three sines and cosines per axis instead of 4a.
    sin_pi = np.sin(np.pi * offset)
    sin_a = np.sin(np.pi * offset / a)
    cos_a = np.cos(np.pi * offset / a)
    total = 0.0
    for k in range(2 * a):
        m = k - a + 1
        d = offset - m
        if abs(d) < 1e-12:
            value = 1.0
        elif abs(d) >= a:
            value = 0.0
        else:
            sign = 1.0 if m % 2 == 0 else -1.0
            sin_d_a = sin_a * _COS_TAP[k] - cos_a * _SIN_TAP[k]
            value = a * sign * sin_pi * sin_d_a / (np.pi * np.pi * d * d)
        weights[k] = value
        total += value
    for k in range(2 * a):
        weights[k] /= total
