"""Parameters of a synthetic VIRCAM data set."""

from __future__ import annotations

__all__ = ("SimulationConfig",)

import dataclasses

from ..camera import CameraDescription
from ..instrument import policy_instrument


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a synthetic VIRCAM data set.

    Two runs with equal configurations write identical pixels.  A
    detector's pixels do not depend on which other detectors are made, so
    ``detectors=(1, 2)`` gives the same CHIP1 and CHIP2 as the full camera.

    The defaults are those of the real VIDEO Z-band stack whose headers are
    the templates (``4_cell7``/``4_cell8``): DIT 50 s, NDIT 1, sky about
    620 ADU per DIT, MAGZPT 23.766, seeing about 2 pixels.  Another filter
    needs its own ``dit``, ``ndit``, ``sky_level`` and ``magzpt``.
    """

    instrument: str = "VIRCAM"
    """Butler name of the registered instrument whose camera description
    (detectors, filters, plate scale, gains) the data set follows."""

    size: int = 2048
    """Side of a detector in pixels (2048 for VIRCAM).  Smaller detectors
    make a miniature camera: the focal-plane layout and the tile offsets
    are scaled by ``size / 2048`` at the true plate scale."""

    seed: int = 1
    """Seed of every random draw (sky, jitter, confidence maps, noise)."""

    detectors: tuple[int, ...] = ()
    """Detectors (``ESO DET CHIP NO``, CAMNUM) to make, in increasing order;
    all of the camera's if empty."""

    n_exposures: int = 9
    """Jittered exposures per pawprint stack (NICOMB, NJITTER)."""

    filter_name: str = "Z"
    """Filter as written in ``ESO INS FILT1 NAME``."""

    dit: float = 50.0
    """Detector integration time (s); EXPTIME of every product."""

    ndit: int = 1
    """Number of DITs averaged in one exposure (``ESO DET NDIT``)."""

    sky_level: float = 620.0
    """Mean sky (gain-normalised ADU per DIT); each stack and detector
    draws its own level within 2% of it."""

    magzpt: float = 23.766
    """Zero point: mag = MAGZPT - 2.5 log10(flux / EXPTIME), flux in ADU."""

    seeing: float = 2.0
    """FWHM (pixels) of the Gaussian PSF of a single exposure at the
    detector centre."""

    psf_variation: float = 0.0
    """Fractional change of the single-exposure PSF's FWHM from the detector
    centre to its corners, quadratic in the distance from the centre (see
    `lsst.obs.vista.sim._psf`); 0 makes the PSF the same everywhere."""

    jitter: float = 6.0
    """Half-width (arcsec) of the uniform random jitter along each axis."""

    star_density: float = 1.0
    """Stars with 15 < mag < 23 per square arcminute."""

    galaxy_density: float = 5.0
    """Exponential-disc galaxies with 17 < mag < 24 per square arcminute."""

    bright_star_density: float = 0.03
    """Stars with 11 < mag < 14.5 (saturated in single exposures) per
    square arcminute."""

    variable_fraction: float = 0.0
    """Fraction of the stars with 15 < mag < 23 that vary: a sinusoidal
    light curve in magnitude, the same in every band (see
    `lsst.obs.vista.sim.variable_magnitude_offset`), for light curves with
    a known answer; each stack sees a variable at its magnitude at the
    stack's mid-time."""

    star_colours: bool = False
    """Give the stars their own colours: each band's magnitude follows from
    the star's random 2MASS J - H and H - Ks through the instrument's
    colour terms, the z band's being the one drawn (see
    `lsst.obs.vista.sim._colours`), for colour–colour diagrams with a known
    answer; `False` gives every source the same Vega magnitude in every
    band.  Z stacks are the same either way."""

    start: str = "2012-09-25T06:00:00"
    """UTC start of the first stack (index 0)."""

    ra: float = 34.5
    """Right ascension of the tile centre (deg)."""

    dec: float = -5.0
    """Declination of the tile centre (deg)."""

    bscale: float = 0.33333333
    """BSCALE of the pawprint stacks' int32 pixels."""

    tile_bscale: float = 0.125
    """BSCALE of the tiles' int32 pixels."""

    @property
    def camera(self) -> CameraDescription:
        """The camera description of `instrument`."""
        return policy_instrument(self.instrument).camera()

    def __post_init__(self) -> None:
        # A list from a command line is accepted; the frozen dataclass needs
        # a tuple to stay hashable (configurations key caches).
        camera = self.camera
        detectors = tuple(int(d) for d in self.detectors) or tuple(sorted(camera.detectors))
        object.__setattr__(self, "detectors", detectors)
        if any(d not in camera.detectors for d in self.detectors):
            raise ValueError(
                f"detectors must be a subset of {self.instrument}'s "
                f"{min(camera.detectors)}-{max(camera.detectors)}, not {self.detectors}"
            )
        if list(self.detectors) != sorted(set(self.detectors)):
            raise ValueError(f"detectors must be unique and increasing, not {self.detectors}")
        if self.filter_name not in camera.filters_by_header_name:
            raise ValueError(
                f"filter_name {self.filter_name!r} is not a {self.instrument} filter "
                f"({', '.join(camera.filters_by_header_name)})"
            )
        if self.size < 64:
            raise ValueError(f"size must be at least 64 pixels, not {self.size}")
        if not 1 <= self.n_exposures <= 99:
            raise ValueError(f"n_exposures must be 1-99, not {self.n_exposures}")
        if self.ndit < 1 or self.dit <= 0:
            raise ValueError("dit must be positive and ndit at least 1")
        if self.seeing * min(1.0, 1.0 + self.psf_variation) < 1.6:
            # Pixel-centre sampling of the Gaussian profiles is exact only
            # for sigma >~ 0.7 pixel, which the corners need too.
            raise ValueError(
                f"the PSF FWHM must be at least 1.6 pixels everywhere, not {self.seeing} at the centre "
                f"with psf_variation {self.psf_variation}"
            )
        if not 0 <= self.jitter / camera.plate_scale <= self.size / 4:
            # Beyond this the jittered footprints hardly overlap.
            raise ValueError(f"jitter must be between 0 and size/4 pixels, not {self.jitter} arcsec")
        if self.seed < 0:
            raise ValueError(f"seed must not be negative, not {self.seed}")
        if self.sky_level <= 0 or self.bscale <= 0 or self.tile_bscale <= 0:
            raise ValueError("sky_level, bscale and tile_bscale must be positive")
        if not 0 <= self.variable_fraction <= 1:
            raise ValueError(f"variable_fraction must be between 0 and 1, not {self.variable_fraction}")
        if min(self.star_density, self.galaxy_density, self.bright_star_density) < 0:
            raise ValueError("source densities must not be negative")
