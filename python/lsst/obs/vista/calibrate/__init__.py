"""Single-frame processing after isr: `CalibrateImageTask` (label
``calibrateImage``) and its retargetable stages (background, detection,
measurement, PSF, aperture correction, astrometry, photometry), built on
sep, Piff, GalSim, astropy and scipy, writing Rubin's
``preliminary_visit_image``, ``preliminary_visit_image_background`` and
``single_visit_star``."""

from .aperture_correction import *
from .astrometry import *
from .background import *
from .casu_comparison import *
from .catalog import *
from .catalog_comparison import *
from .columns import *
from .detection import *
from .measurement import *
from .noise_correlation import *
from .photometry import *
from .psf import *
from .skipped import *
from .summary import *
from .task import *
