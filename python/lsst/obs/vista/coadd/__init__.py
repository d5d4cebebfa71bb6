"""Coadds on a registered skymap: direct warps of visits onto patches and
their cell-based coadd (Rubin's ``direct_warp`` and ``deep_coadd``)."""

from .assemble import *
from .warp import *
