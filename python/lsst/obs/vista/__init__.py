"""obs_vista: Gen3 butler support for survey images reduced by other pipelines.

VISTA/VIRCAM products reduced by CASU and DECam Community Pipeline instcal
products are ingested into a butler repository and assembled into
`lsst.images.VisitImage` exposures by `VistaIsrTask`.
"""

from importlib import import_module
from typing import Any

# Importing the package registers the header translators (cheap) ...
from .translators import *

# ... while the instruments, camera and ISR task, which pull in lsst-images
# and pipe_base (seconds of start-up), load on first use: every ``butler``
# command imports this package through the CLI plugin.
_LAZY = {
    "CalibrateImageTask": ".calibrate",
    "CameraDescription": ".camera",
    "DetectorDescription": ".camera",
    "FilterDescription": ".camera",
    "DecamCp": ".instrument",
    "DecamCpIsrTask": ".isr",
    "PolicyInstrument": ".instrument",
    "Vircam": ".instrument",
    "VistaIsrTask": ".isr",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
