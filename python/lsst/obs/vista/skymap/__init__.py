"""Skymaps: the tract and patch geometry coadds are made on (Rubin's rings
skymaps and discrete ones), and their registration in a butler repository
(``butler register-skymap``)."""

from .config import *
from .geometry import *
from .register import *
