"""Batch production (bps) support: parsl sites that ctrl_bps_parsl does not
provide, and the ``bps submit`` command of the ProcessCcd pipeline."""

from .command import *
from .sites import *
