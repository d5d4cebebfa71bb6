"""Synthetic VISTA/VIRCAM CASU products with exact known truth.

No real VIRCAM pixels are available to the project, so this package makes
files that look like CASU pawprint stacks (``*_st.fit``) and tiles
(``*_st_tl.fit``) with their confidence maps and catalogues, on the cards
of real CASU headers, from a noise model whose every term is known.  Each
product comes with a truth sidecar (``truth/<stem>_truth.fits``) holding the
exact per-pixel variance, neighbour covariances and noiseless model, for
testing ingest and ISR, and the true sources on each detector (position,
flux, magnitudes, true PSF FWHM) with the true zero points, for testing the
processing after it.  The PSF may vary across the detectors
(``psf_variation``); `true_psf_fwhm` gives the exact FWHM of a stack's PSF
anywhere.  `write_reference_catalog` writes a Gaia-DR3-like reference
catalogue of the simulated stars, with proper motions, and
`write_twomass_catalog` a 2MASS-PSC-like one whose J, H, Ks give each star's
magnitude in the simulated band through the instrument's colour term.
``star_colours`` gives the stars their own colours from the same colour
terms (`SimulationConfig.star_colours`).  A
fraction of the stars may vary (``variable_fraction``;
`variable_magnitude_offset`).

Use `write_pawprint_stack`, `write_tile` and `write_reference_catalog`, or
the command line::

    python -m lsst.obs.vista.sim OUTDIR --stacks 6 --tile --refcat OUTDIR/gaia.fits
"""

__all__ = (
    "REFERENCE_EPOCH",
    "SOURCE_COLUMNS",
    "SimulatedStack",
    "SimulatedTile",
    "SimulationConfig",
    "read_source_truth",
    "stack_headers",
    "TWOMASS_JDATE",
    "true_psf_fwhm",
    "variable_magnitude_offset",
    "write_pawprint_stack",
    "write_reference_catalog",
    "write_tile",
    "write_twomass_catalog",
)

from ._config import SimulationConfig
from ._headers import stack_headers
from ._pawprint import SimulatedStack, write_pawprint_stack
from ._psf import true_psf_fwhm
from ._refcat import REFERENCE_EPOCH, write_reference_catalog
from ._sky import variable_magnitude_offset
from ._sources import SOURCE_COLUMNS, read_source_truth
from ._tile import SimulatedTile, write_tile
from ._twomass import TWOMASS_JDATE, write_twomass_catalog
