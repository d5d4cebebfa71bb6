"""Synthetic VISTA/VIRCAM CASU products with exact known truth.

No real VIRCAM pixels are available to the project, so this package makes
files that look like CASU pawprint stacks (``*_st.fit``) and tiles
(``*_st_tl.fit``) with their confidence maps and catalogues, on the cards
of real CASU headers, from a noise model whose every term is known.  Each
product comes with a truth sidecar (``truth/<stem>_truth.fits``) holding the
exact per-pixel variance, neighbour covariances and noiseless model, for
testing ingest and ISR.

Use `write_pawprint_stack` and `write_tile`, or the command line::

    python -m lsst.obs.vista.sim OUTDIR --stacks 6 --tile
"""

__all__ = (
    "SimulatedStack",
    "SimulatedTile",
    "SimulationConfig",
    "stack_headers",
    "write_pawprint_stack",
    "write_tile",
)

from ._config import SimulationConfig
from ._headers import stack_headers
from ._pawprint import SimulatedStack, write_pawprint_stack
from ._tile import SimulatedTile, write_tile
