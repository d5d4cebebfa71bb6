"""Noiseless images of the sources, as a single exposure sees them.

Every source is a sum of elliptical Gaussians already convolved with the
Gaussian PSF at its centre: a star is the PSF itself, a galaxy an
exponential disc written as a mixture of Gaussians (fitted once, see
`exponential_mixture`).  Profiles are sampled at pixel centres; with the
PSF's sigma >= 0.68 pixel (FWHM >= 1.6) a sampled Gaussian sums to its
flux and has its second moments to better than 1e-5.  Values below
`THRESHOLD` are not drawn.
"""

from __future__ import annotations

__all__ = ("THRESHOLD", "Scene", "exponential_mixture", "render")

import dataclasses
import math
from functools import cache

import numpy as np
from scipy.optimize import nnls

THRESHOLD = 1e-3
"""Pixel value (ADU per DIT) below which a Gaussian component is cut off."""


_MAX_HALF_WIDTH = 80
_BATCH_PIXELS = 1 << 21


@cache
def exponential_mixture() -> tuple[np.ndarray, np.ndarray]:
    """Return a Gaussian mixture that approximates an exponential disc.

    Returns
    -------
    amplitudes : `numpy.ndarray`
        Fraction of the flux in each of 8 circular Gaussians (sum 1).
    sigmas : `numpy.ndarray`
        Their sigmas in units of the half-light radius.

    Notes
    -----
    The fit is a non-negative least-squares match of the surface
    brightness ``exp(-1.678 r / r_e)`` on 0 < r < 8 r_e, weighted by
    ``sqrt(r)``, with sigmas fixed on a geometric grid from 0.05 to 2 r_e;
    its profile error is below 0.3% of the peak of ``r I(r)``.
    """
    b = 1.6783469900166605  # exp(-b r/r_e) encloses half its flux in r_e
    sigmas = np.geomspace(0.05, 2.0, 8)
    radii = np.linspace(0.0, 8.0, 4001)[1:]
    profile = np.exp(-b * radii) * b**2 / (2.0 * math.pi)
    basis = np.exp(-(radii[:, None] ** 2) / (2.0 * sigmas**2)) / (2.0 * math.pi * sigmas**2)
    weight = np.sqrt(radii)[:, None]
    amplitudes, _ = nnls(basis * weight, profile * weight[:, 0])
    return amplitudes / amplitudes.sum(), sigmas


@dataclasses.dataclass(frozen=True)
class Scene:
    """Gaussian components of the sources near one detector.

    All arrays have one entry per component; positions are on the stack
    grid (0-based pixels).
    """

    x: np.ndarray
    y: np.ndarray
    amplitude: np.ndarray
    """Flux of the component (ADU per DIT)."""
    inverse: np.ndarray
    """``(n, 3)``: entries (xx, xy, yy) of the inverse covariance."""
    norm: np.ndarray
    """``1 / (2 pi sqrt(det covariance))``."""
    half_width: np.ndarray
    """Half-width (pixels) of the square the component is drawn in."""

    @classmethod
    def from_sources(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        flux: np.ndarray,
        radius: np.ndarray,
        axis_ratio: np.ndarray,
        angle: np.ndarray,
        psf_variance: float | np.ndarray,
    ) -> Scene:
        """Build the components of stars and galaxies.

        Parameters
        ----------
        x, y : `numpy.ndarray`
            Source centres on the stack grid.
        flux : `numpy.ndarray`
            Total fluxes (ADU per DIT).
        radius : `numpy.ndarray`
            Half-light radius (pixels) along the major axis; 0 for a star.
        axis_ratio : `numpy.ndarray`
            Minor over major axis.
        angle : `numpy.ndarray`
            Major-axis angle (radians) from +x towards +y.
        psf_variance : `float` or `numpy.ndarray`
            sigma**2 (pixels**2) of the Gaussian PSF, for all sources or
            for each.

        Returns
        -------
        scene : `Scene`
            One component per star, one per mixture term per galaxy.
        """
        galaxy = radius > 0
        psf = np.broadcast_to(np.asarray(psf_variance, dtype=float), np.shape(x))
        fractions, sigmas = exponential_mixture()
        parts: list[tuple[np.ndarray, ...]] = []
        # Stars: the PSF.
        star = ~galaxy
        variance = psf[star]
        parts.append((x[star], y[star], flux[star], variance, np.zeros_like(variance), variance))
        # Galaxies: each mixture term, sheared and rotated, plus the PSF.
        cos, sin = np.cos(angle[galaxy]), np.sin(angle[galaxy])
        major2 = radius[galaxy] ** 2
        minor2 = major2 * axis_ratio[galaxy] ** 2
        for fraction, sigma in zip(fractions, sigmas, strict=True):
            a2, b2 = sigma**2 * major2, sigma**2 * minor2
            parts.append(
                (
                    x[galaxy],
                    y[galaxy],
                    fraction * flux[galaxy],
                    a2 * cos**2 + b2 * sin**2 + psf[galaxy],
                    (a2 - b2) * cos * sin,
                    a2 * sin**2 + b2 * cos**2 + psf[galaxy],
                )
            )
        cx, cy, amplitude, sxx, sxy, syy = (np.concatenate(column) for column in zip(*parts, strict=True))
        det = sxx * syy - sxy**2
        norm = 1.0 / (2.0 * math.pi * np.sqrt(det))
        # Draw out to where the component falls below THRESHOLD, along its
        # widest direction.
        widest = 0.5 * (sxx + syy) + np.sqrt(0.25 * (sxx - syy) ** 2 + sxy**2)
        levels = np.log(np.maximum(amplitude * norm / THRESHOLD, math.e))
        half_width = np.minimum(np.ceil(np.sqrt(2.0 * widest * levels)), _MAX_HALF_WIDTH).astype(int)
        keep = amplitude * norm > THRESHOLD
        return cls(
            x=cx[keep],
            y=cy[keep],
            amplitude=amplitude[keep],
            inverse=np.stack([syy, -sxy, sxx], axis=1)[keep] / det[keep, None],
            norm=norm[keep],
            half_width=np.maximum(half_width[keep], 2),
        )


def render(scene: Scene, origin: np.ndarray, size: int) -> np.ndarray:
    """Draw the scene as seen by one exposure.

    Parameters
    ----------
    scene : `Scene`
        Components on the stack grid.
    origin : `numpy.ndarray`
        Position (x, y) of the exposure's pixel (0, 0) on the stack grid.
    size : `int`
        Side of the exposure.

    Returns
    -------
    image : `numpy.ndarray`
        ``(size, size)`` float64 image of the sources (ADU per DIT).
    """
    x = scene.x - origin[0]
    y = scene.y - origin[1]
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    # Components are drawn in batches of equal stamp size, so that each
    # batch is one vectorised evaluation.
    for half_width in np.unique(scene.half_width):
        (members,) = np.nonzero(scene.half_width == half_width)
        side = 2 * half_width + 1
        batch = max(1, _BATCH_PIXELS // side**2)
        for start in range(0, len(members), batch):
            flat, stamp = _stamps(scene, members[start : start + batch], x, y, half_width, size)
            indices.append(flat)
            values.append(stamp)
    if not indices:
        return np.zeros((size, size))
    image = np.bincount(np.concatenate(indices), weights=np.concatenate(values), minlength=size * size)
    return image.reshape(size, size)


def _stamps(
    scene: Scene, members: np.ndarray, x: np.ndarray, y: np.ndarray, half_width: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate components of one stamp size; return the flat pixel indices
    inside the exposure and the values there."""
    steps = np.arange(2 * half_width + 1) - half_width
    ix = np.floor(x[members]).astype(int)[:, None] + steps
    iy = np.floor(y[members]).astype(int)[:, None] + steps
    dx = (ix - x[members, None])[:, None, :]
    dy = (iy - y[members, None])[:, :, None]
    inv = scene.inverse[members]
    exponent = inv[:, 0, None, None] * dx**2 + 2.0 * inv[:, 1, None, None] * dx * dy
    exponent += inv[:, 2, None, None] * dy**2
    stamp = (scene.amplitude[members] * scene.norm[members])[:, None, None] * np.exp(-0.5 * exponent)
    inside = ((ix >= 0) & (ix < size))[:, None, :] & ((iy >= 0) & (iy < size))[:, :, None]
    flat = iy[:, :, None] * size + ix[:, None, :]
    return flat[inside], stamp[inside]
