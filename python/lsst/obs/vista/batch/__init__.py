"""Batch production (bps) support: parsl sites that ctrl_bps_parsl does not
provide, the ``bps submit`` command of the ProcessCcd pipeline, and whether
this Python reads bps' quantum graphs safely."""

from .command import *
from .python_check import *
from .sites import *
