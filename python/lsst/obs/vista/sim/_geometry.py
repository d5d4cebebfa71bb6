"""Where the synthetic detectors, jitters and pawprints point.

All positions on the sky are defined in one tangent-plane frame centred on
the tile (`sky_frame`), whose pixels have the size and orientation of the
pawprint stacks' pixels.  A pawprint at tile offset ``OFFSET_I`` points at
the sky-frame position of its offset; its stacks use the real ZPN WCS
around that pointing, with CRPIX from the focal-plane position of each
detector.  The jittered exposures of a stack are translations of the
stack's pixel grid, so resampling them onto it is the same bilinear kernel
at every pixel.
"""

from __future__ import annotations

__all__ = (
    "Jitter",
    "detector_crpix",
    "header_wcs",
    "jitter",
    "layout_scale",
    "plate_scale",
    "pointing",
    "sky_frame",
    "tile_offset",
)

import dataclasses
import math
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from ._config import SimulationConfig
from ._random import Stream, generator
from ._templates import stack_cd_matrix

_TILE_STEP = 0.475
"""Offset between neighbouring pawprints of a ``Tile6n`` tile, in detector
sizes (329.779 arcsec for VIRCAM, the ``OFFSET_X/Y`` of real headers)."""


def plate_scale(config: SimulationConfig) -> float:
    """Return the nominal plate scale (arcsec/pixel) of the camera."""
    return config.camera.plate_scale


def layout_scale(config: SimulationConfig) -> float:
    """Return the factor that shrinks the real focal plane to ``size``."""
    return config.size / config.camera.detector_shape[1]


def header_wcs(header: fits.Header) -> WCS:
    """Return the WCS of a CASU image header.

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        The header.

    Returns
    -------
    wcs : `astropy.wcs.WCS`
        Its celestial WCS; astropy's complaints about the real cards
        (RADECSYS, the old PROJPn that repeat PV2_n) are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def stack_cd(config: SimulationConfig) -> np.ndarray:
    """Return the CD matrix (deg/pixel) of the simulated stacks: the real
    VIRCAM stack's, scaled by the ratio of the camera's nominal plate scale
    to VIRCAM's (exactly the real one for VIRCAM), so that another camera
    keeps the template's rotation and its scale relative to nominal."""
    from ..instrument import policy_instrument

    template_scale = policy_instrument("VIRCAM").camera().plate_scale
    return stack_cd_matrix() * (plate_scale(config) / template_scale)


def sky_frame(config: SimulationConfig) -> WCS:
    """Return the tangent-plane frame of the tile.

    Parameters
    ----------
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    wcs : `astropy.wcs.WCS`
        TAN projection at the tile centre, whose 0-based pixel (0, 0) is the
        centre and whose CD matrix is `stack_cd`.
    """
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [config.ra, config.dec]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.cd = stack_cd(config)
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def tile_offset(offset_index: int, config: SimulationConfig) -> tuple[float, float]:
    """Return the offset of a pawprint from the tile centre (pixels).

    Parameters
    ----------
    offset_index : `int`
        ``OFFSET_I``, 1-6.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    dx, dy : `float`
        Offset along the pixel axes: two columns 0.95 detector widths apart
        (which bridges the 42.5% gaps between detectors along x) and three
        rows 0.475 detector heights apart (the 90% gaps along y).
    """
    column, row = (offset_index - 1) % 2, (offset_index - 1) // 2
    step = _TILE_STEP * config.size
    return (2 * column - 1) * step, (row - 1) * step


def pointing(offset_index: int, config: SimulationConfig) -> tuple[float, float]:
    """Return the sky position (deg) of a pawprint's optical axis.

    Parameters
    ----------
    offset_index : `int`
        ``OFFSET_I``, 1-6.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    ra, dec : `float`
        CRVAL of the pawprint's stacks.
    """
    ra, dec = sky_frame(config).pixel_to_world_values(*tile_offset(offset_index, config))
    return float(ra), float(dec)


@dataclasses.dataclass(frozen=True)
class Jitter:
    """Jitter offsets of the exposures of one stack and the stack grid."""

    offsets: np.ndarray
    """``(n_exposures, 2)`` position (x, y) of each exposure's pixel (0, 0)
    on the stack grid; both columns have minimum 0."""

    size: int
    """Side of the exposures (detector pixels)."""

    shape: tuple[int, int]
    """``(ny, nx)`` of the stack: the union of the exposures' footprints,
    plus the column and row that a fractional offset's last pixel reaches."""

    @property
    def nominal(self) -> np.ndarray:
        """``(n_exposures, 2)`` offsets (pixels) from the nominal pointing,
        whose detector footprint is centred on the stack grid."""
        ny, nx = self.shape
        return self.offsets - 0.5 * np.array([nx - self.size, ny - self.size])


def jitter(index: int, config: SimulationConfig) -> Jitter:
    """Return the random jitter pattern of one stack.

    Parameters
    ----------
    index : `int`
        Stack index.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    jitter : `Jitter`
        Offsets uniform within +-``config.jitter`` arcsec per axis, with
        random sub-pixel parts, shared by all detectors of the stack.
    """
    rng = generator(config.seed, Stream.JITTER, index)
    half_width = config.jitter / plate_scale(config)
    offsets = rng.uniform(-half_width, half_width, size=(config.n_exposures, 2))
    offsets -= offsets.min(axis=0)
    # Each exposure covers [offset, offset + size - 1]; the bilinear kernel
    # of a fractional offset reaches one pixel further.
    nx, ny = (config.size + int(math.floor(offsets[:, axis].max())) + 1 for axis in (0, 1))
    return Jitter(offsets=offsets, size=config.size, shape=(ny, nx))


def detector_crpix(detector_id: int, shape: tuple[int, int], config: SimulationConfig) -> tuple[float, float]:
    """Return CRPIX of a detector's stack (the optical axis, 1-based).

    Parameters
    ----------
    detector_id : `int`
        ``ESO DET CHIP NO``.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the stack.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    crpix1, crpix2 : `float`
        The stack's centre minus the detector centre's focal-plane offset
        from the optical axis, in pixels (scaled to ``size``).
    """
    camera = config.camera
    detector = camera.detectors[detector_id]
    per_mm = layout_scale(config) / camera.pixel_size
    ny, nx = shape
    return 0.5 * (nx + 1) - detector.focal_plane_x * per_mm, 0.5 * (ny + 1) - detector.focal_plane_y * per_mm
