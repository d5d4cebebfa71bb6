"""obs_vista: Gen3 butler support for survey images reduced by other pipelines.

VISTA/VIRCAM products reduced by CASU and DECam Community Pipeline instcal
products are ingested into a butler repository and assembled into
`lsst.images.VisitImage` exposures by `VistaIsrTask`.
"""

from .camera import *
from .instrument import *
from .translators import *
from .isr import VistaIsrTask
