"""Reference catalogues: Gaia-like FITS tables sharded into htm7 datasets
(`ingest_refcat`, behind ``butler ingest-refcat``), and the loader that
propagates them to an observation's epoch (`load_reference_stars`)."""

from .ingest import *
from .loading import *
from .pixelization import *
from .schema import *
from .sharding import *
