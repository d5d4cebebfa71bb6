"""The PSF of the synthetic exposures and the exact PSF of their stacks.

Single exposure
---------------
A Gaussian whose FWHM varies smoothly over the detector, the same on every
detector and in every exposure (it belongs to the optics, so it follows the
detector, not the sky)::

    FWHM(u, v) = seeing * (1 + psf_variation * rho**2)
    rho**2 = ((u - c)**2 + (v - c)**2) / (2 c**2),   c = (size - 1) / 2

with ``(u, v)`` the 0-based pixel position on the exposure: ``psf_variation``
is the fractional change of the FWHM from the detector centre (rho = 0) to
the centres of its corner pixels (rho = 1).  A source is drawn with the PSF
at its centre; a source centred off the detector, whose wings reach it,
takes the PSF of the nearest point on the detector.

Stack
-----
Exposure i is a translation of the stack grid by ``o_i``; its bilinear
resampling (fractions ``t_i = o_i mod 1``) convolves its profile with a
two-tap kernel of zero mean and variance ``t (1 - t)`` along each axis.
The stack is the mean of the exposures that cover a pixel, so at stack
position ``(x, y)``, with the n exposures whose footprints contain it, its
PSF is the mixture of Gaussians with a common centre::

    P(x, y) = (1 / n) sum_i K(t_i) * G(sigma_i(x - o_i, y - o_i))

whose second moments are the means::

    Ixx = (1 / n) sum_i [sigma_i**2 + t_xi (1 - t_xi)],   Iyy likewise.

`true_psf_fwhm` is the FWHM of its Gaussian equivalent,
``2 sqrt(2 ln 2) sqrt((Ixx + Iyy) / 2)``: what the second moments of a
noiseless point source in the stack give (sampled Gaussians of sigma >= 0.68
pixel have their moments to 1e-5, see `lsst.obs.vista.sim._render`).  The
mixture weights are taken equal: the stack actually weights each input pixel
by its flat field (confidence), whose pixel-to-pixel scatter of 5% changes a
star's second-moment FWHM by up to 0.2% (0.05% typically), and drops inputs
that are dead pixels.
"""

from __future__ import annotations

__all__ = ("detector_mean_psf_variance", "exposure_psf_variance", "stack_psf_fwhm", "true_psf_fwhm")

import numpy as np

from ..psf_shape import FWHM_PER_SIGMA
from ._config import SimulationConfig
from ._geometry import jitter


def _centre_psf_variance(config: SimulationConfig) -> float:
    """Return the variance (pixels**2) of the exposure PSF at the detector
    centre."""
    return (config.seeing / FWHM_PER_SIGMA) ** 2


def exposure_psf_variance(config: SimulationConfig, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return the variance of a single exposure's Gaussian PSF.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation (``seeing``, ``psf_variation``, ``size``).
    u, v : `numpy.ndarray`
        Positions (0-based pixels) on the exposure; positions off the
        detector take the PSF of the nearest point on it.

    Returns
    -------
    variance : `numpy.ndarray`
        sigma**2 (pixels**2) of the PSF at each position; exactly the centre
        value everywhere when ``psf_variation`` is 0.
    """
    centre = 0.5 * (config.size - 1)
    du = np.clip(np.asarray(u, dtype=float), 0.0, config.size - 1) - centre
    dv = np.clip(np.asarray(v, dtype=float), 0.0, config.size - 1) - centre
    rho2 = (du**2 + dv**2) / (2.0 * centre**2)
    return _centre_psf_variance(config) * (1.0 + config.psf_variation * rho2) ** 2


def detector_mean_psf_variance(config: SimulationConfig) -> float:
    """Return the mean over the detector of the exposure PSF's variance.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    variance : `float`
        ``sigma_0**2 (1 + 2 p / 3 + 7 p**2 / 45)`` (p = ``psf_variation``):
        the mean of ``(1 + p rho**2)**2`` over the square, on which rho**2 has
        mean 1/3 and rho**4 mean 7/45.
    """
    p = config.psf_variation
    return _centre_psf_variance(config) * (1.0 + 2.0 * p / 3.0 + 7.0 * p**2 / 45.0)


def stack_psf_fwhm(config: SimulationConfig, offsets: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the true FWHM of a stack's PSF from its jitter offsets.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.
    offsets : `numpy.ndarray`
        ``(n_exposures, 2)`` stack position (x, y) of each exposure's pixel
        (0, 0).
    x, y : `numpy.ndarray`
        Positions on the stack (0-based pixels).

    Returns
    -------
    fwhm : `numpy.ndarray`
        Second-moment FWHM (pixels) of the stack PSF (see the module
        docstring); NaN where no exposure covers the position.
    """
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    total = np.zeros(x.shape)
    count = np.zeros(x.shape)
    last = config.size - 1
    fractions = np.mod(offsets, 1.0)
    for (ox, oy), (tx, ty) in zip(offsets, fractions, strict=True):
        u, v = x - ox, y - oy
        covered = (u >= 0) & (u <= last) & (v >= 0) & (v <= last)
        resampling = 0.5 * (tx * (1.0 - tx) + ty * (1.0 - ty))
        total += np.where(covered, exposure_psf_variance(config, u, v) + resampling, 0.0)
        count += covered
    with np.errstate(invalid="ignore", divide="ignore"):
        return FWHM_PER_SIGMA * np.sqrt(np.where(count > 0, total / count, np.nan))


def true_psf_fwhm(config: SimulationConfig, index: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the true FWHM of a pawprint stack's PSF.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation the stack was made with.
    index : `int`
        Stack index (`SimulatedStack.index`); it sets the jitter offsets.
    x, y : `numpy.ndarray`
        Positions on the stack, 0-based pixels: the centre of
        ``array[j, i]`` is ``(x=i, y=j)``, as the ingested stack's bounding
        box (which starts at 0) presents them.  The same on every detector.

    Returns
    -------
    fwhm : `numpy.ndarray`
        ``2 sqrt(2 ln 2) sqrt((Ixx + Iyy) / 2)`` (pixels) of the true PSF
        at each position, from its exact second moments (module docstring);
        NaN where no exposure covers the position.
    """
    return stack_psf_fwhm(config, jitter(index, config).offsets, x, y)
