"""Assembly of exposures from reduced images: `VistaIsrTask` for CASU VIRCAM
products, on an instrument-independent core (`ExposureAssemblyTask`) whose
variance model, quality-mask decoder and noise check are retargetable."""

from .assembly import *
from .background import *
from .casu import *
from .masks import *
from .noise_check import *
from .parameters import *
from .task import *
from .variance import *
