"""Everything about a pawprint stack that is known before its pixels."""

from __future__ import annotations

__all__ = ("StackPlan",)

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from ..psf_shape import FWHM_PER_SIGMA
from ._config import SimulationConfig
from ._geometry import Jitter, detector_crpix, jitter, pointing
from ._psf import detector_mean_psf_variance
from ._random import Stream, generator
from ._schedule import Visit, visit
from ._stack import DetectorNoise

_SKY_SCATTER = 0.02
"""Relative scatter of the sky level between stacks and detectors."""


def _sky_level(index: int, detector_id: int, config: SimulationConfig) -> float:
    """Return the true sky of one detector of one stack, rounded to the
    0.01 ADU of the SKYLEVEL card so that the card is the truth."""
    scatter = generator(config.seed, Stream.SKY, index, detector_id).standard_normal()
    return round(config.sky_level * (1.0 + _SKY_SCATTER * scatter), 2)


@dataclasses.dataclass(frozen=True)
class StackPlan:
    """Observation, geometry and noise parameters of one pawprint stack."""

    config: SimulationConfig
    visit: Visit
    jitter: Jitter
    crval: tuple[float, float]
    """Pointing of the pawprint (deg): CRVAL of all its detectors."""

    sky: Mapping[int, float]
    """True sky level (gain-normalised ADU per DIT) of each detector."""

    noise: Mapping[int, DetectorNoise]
    """Noise parameters of each detector."""

    @classmethod
    def make(cls, index: int, config: SimulationConfig) -> StackPlan:
        """Plan the stack with a given index.

        Parameters
        ----------
        index : `int`
            Stack index (0-based).
        config : `SimulationConfig`
            The simulation.

        Returns
        -------
        plan : `StackPlan`
            The plan; cheap to make (no pixels).
        """
        obs = visit(index, config.start, config.n_exposures, config.dit, config.ndit)
        sky = {detector_id: _sky_level(index, detector_id, config) for detector_id in config.detectors}
        return cls(
            config=config,
            visit=obs,
            jitter=jitter(index, config),
            crval=pointing(obs.offset_index, config),
            sky=sky,
            noise={d: DetectorNoise.for_detector(d, config) for d in config.detectors},
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the stack."""
        return self.jitter.shape

    def crpix(self, detector_id: int) -> tuple[float, float]:
        """Return CRPIX (1-based) of a detector's stack."""
        return detector_crpix(detector_id, self.shape, self.config)

    @property
    def midpoint_mjd(self) -> float:
        """UTC MJD of DATE-OBS plus half the stack's exposure time (DIT x
        NDIT x NICOMB), the midpoint its headers give: the time at which the
        stack sees its variable sources (their change within the stack is
        not simulated)."""
        config = self.config
        return float(self.visit.start.utc.mjd + 0.5 * config.dit * config.ndit * config.n_exposures / 86400.0)

    @property
    def _resampling_variance(self) -> float:
        """Mean over exposures and axes of the bilinear kernel's variance
        t (1 - t)."""
        fractions = np.mod(self.jitter.offsets, 1.0)
        return float(np.mean(fractions * (1.0 - fractions)))

    @property
    def seeing(self) -> float:
        """Mean FWHM (pixels) of the stack's PSF over the detector (SEEING).

        The bilinear kernel of offset fraction t adds t (1 - t) to the
        variance of the profile along its axis; the stack, a mean of PSFs
        with equal centres, has the mean second moments.  This is the FWHM of
        the Gaussian with those second moments (averaged over x and y, over
        the exposures and over the detector); the stack PSF is a mixture of
        nearly equal Gaussians.  Without PSF variation it is the true FWHM
        (`lsst.obs.vista.sim.true_psf_fwhm`) wherever all exposures overlap.
        """
        return FWHM_PER_SIGMA * math.sqrt(detector_mean_psf_variance(self.config) + self._resampling_variance)

    def nominal_sky_noise(self, detector_id: int) -> float:
        """Return the predicted noise (ADU) of a sky pixel covered by all
        exposures with flat field 1.

        Parameters
        ----------
        detector_id : `int`
            ``ESO DET CHIP NO``.

        Returns
        -------
        sigma : `float`
            ``sqrt(var1 sum_i s_i / n**2 + BSCALE**2 / 12)`` with ``var1`` the
            variance of one exposure's sky pixel and ``s_i`` the sum of the
            squared bilinear weights of exposure i.
        """
        fractions = np.mod(self.jitter.offsets, 1.0)
        squared_weights = np.prod(fractions**2 + (1.0 - fractions) ** 2, axis=1)
        n = len(fractions)
        single = self.noise[detector_id].variance(self.sky[detector_id])
        return math.sqrt(single * squared_weights.sum() / n**2 + self.config.bscale**2 / 12.0)
