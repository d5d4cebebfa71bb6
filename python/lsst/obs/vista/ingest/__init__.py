"""Ingest of reduced survey products (CASU VISTA stacks, confidence maps,
catalogues, tiles) into a butler repository, driven by the dataset policy
``policy/<instrument>/datasets.yaml``.
"""

from .ingester import *
from .policy import *
from .report import *
from .walk import *
