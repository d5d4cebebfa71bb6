"""Assembly of exposures from reduced images: `VistaIsrTask` for CASU VIRCAM
products and `DecamCpIsrTask` for DECam Community Pipeline instcal trios, on
one instrument-independent core (`ExposureAssemblyTask`) whose variance
model, quality-mask decoder and noise check are retargetable."""

from .assembly import *
from .background import *
from .casu import *
from .casu_task import *
from .cp import *
from .cp_task import *
from .handoff import *
from .masks import *
from .noise_check import *
from .parameters import *
from .pipeline_task import *
from .variance import *
from .wcs import *
