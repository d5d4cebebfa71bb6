"""Objects on the coadds: per-band detection, merged and deblended
detections, reference-band and forced measurement, and Rubin's object
tables."""

from .detection import *
from .forced import *
from .forced_external import *
from .forced_visit import *
from .measurement import *
from .merge import *
from .noise import *
from .object_id import *
from .ref_measurement import *
from .tables import *
