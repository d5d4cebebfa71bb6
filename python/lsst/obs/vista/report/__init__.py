"""The report of the worked example: a static HTML page with PNG figures
(matplotlib) and a ``summary.json`` of its numbers, made from the outputs
of ``calibrateImage`` (``preliminary_visit_image``, ``single_visit_star``).
Command line: ``butler make-report REPO --collections ... -o DIR`` or
``python -m lsst.obs.vista.report REPO --collections ... -o DIR``."""

from .build import *
from .gather import *
from .psf_residuals import *
from .repeatability import *
from .statistics import *
