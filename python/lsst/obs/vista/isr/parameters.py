"""Instrument-independent description of the noise of a reduced image."""

from __future__ import annotations

__all__ = ("NoiseParameters",)

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class NoiseParameters:
    """Noise properties of a reduced image, all in the image's own units.

    A reduced image (a CASU pawprint stack, a DECam instcal image) is the
    weighted mean of ``n_combined`` input exposures, each possibly resampled,
    in units that are proportional to detected electrons.  Everything a
    variance model needs from the instrument and the header is collected
    here, so that the models in `lsst.obs.vista.isr.variance` never read a
    header themselves.

    Notes
    -----
    For one input exposure at nominal weight, with signal ``S`` in image
    units, the variance before resampling is ``S / gain + read_noise**2``.
    Averaging ``n_combined`` such exposures divides it by ``n_combined``,
    and resampling each of them with an interpolation kernel of weights
    ``w`` multiplies the independent-pixel part by ``k = sum(w**2) <= 1``.
    ``k`` is not recorded by the reduction software, but when it states the
    sky noise it measured (``sky_noise``, at nominal weight) it follows from

        sky_noise**2 = k * (sky_level / gain + read_noise**2) / n_combined

    which is `resampling_factor`.  Any excess noise the reduction added
    (sky-subtraction residuals, an optimistic nominal gain) enters ``k`` the
    same way, so applying it to the source term keeps the sky and source
    terms on one consistent scale.
    """

    gain: float
    """Effective gain of one input exposure (electrons per image unit)."""

    read_noise: float
    """Read noise of one input exposure (image units)."""

    n_combined: int = 1
    """Number of input exposures averaged at nominal weight."""

    sky_level: float | None = None
    """Sky level still present in the image (image units), if known."""

    sky_noise: float | None = None
    """Measured rms of the sky at nominal weight (image units), if known."""

    def __post_init__(self) -> None:
        if not (self.gain > 0 and math.isfinite(self.gain)):
            raise ValueError(f"Gain must be positive and finite; got {self.gain}.")
        if not (self.read_noise >= 0 and math.isfinite(self.read_noise)):
            raise ValueError(f"Read noise must be non-negative and finite; got {self.read_noise}.")
        if self.n_combined < 1:
            raise ValueError(f"n_combined must be at least 1; got {self.n_combined}.")
        if self.sky_noise is not None and not self.sky_noise > 0:
            raise ValueError(f"Sky noise must be positive; got {self.sky_noise}.")

    @classmethod
    def from_header_values(
        cls, *, gain: float, read_noise: float, n_combined: int, sky_level: Any, sky_noise: Any
    ) -> NoiseParameters:
        """Return the parameters with the sky level and noise as header
        cards give them.

        Parameters
        ----------
        gain, read_noise, n_combined
            As the fields.
        sky_level : `float`, `str` or `None`
            Value of the card of the sky level, `None` if absent.
        sky_noise : `float`, `str` or `None`
            Value of the card of the sky noise, `None` if absent; a value
            that is not positive says that none was measured.

        Returns
        -------
        noise : `NoiseParameters`
            The parameters.
        """
        return cls(
            gain=gain,
            read_noise=read_noise,
            n_combined=n_combined,
            sky_level=float(sky_level) if sky_level is not None else None,
            sky_noise=float(sky_noise) if sky_noise is not None and float(sky_noise) > 0 else None,
        )

    @property
    def stack_gain(self) -> float:
        """Effective gain of the combination at nominal weight (electrons
        per image unit): ``gain * n_combined``."""
        return self.gain * self.n_combined

    @property
    def predicted_sky_variance(self) -> float | None:
        """Sky variance at nominal weight predicted from the sky level, gain
        and read noise, without resampling (image units squared), or `None`
        if the sky level is unknown."""
        if self.sky_level is None:
            return None
        return (max(self.sky_level, 0.0) / self.gain + self.read_noise**2) / self.n_combined

    @property
    def sky_variance(self) -> float | None:
        """Best estimate of the sky variance at nominal weight: the measured
        ``sky_noise**2`` if known, else `predicted_sky_variance`."""
        if self.sky_noise is not None:
            return self.sky_noise**2
        return self.predicted_sky_variance

    @property
    def resampling_factor(self) -> float:
        """Ratio ``k`` of the measured to the predicted sky variance (see the
        class notes); 1 when either is unknown."""
        predicted = self.predicted_sky_variance
        if self.sky_noise is None or predicted is None or predicted <= 0:
            return 1.0
        return self.sky_noise**2 / predicted
