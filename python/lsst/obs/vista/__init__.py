"""obs_vista: Gen3 butler support for survey images reduced by other pipelines.

VISTA/VIRCAM products reduced by CASU and DECam Community Pipeline instcal
products are ingested into a butler repository and assembled into
`lsst.images.VisitImage` exposures by `VistaIsrTask`.
"""

import atexit
import gc
from importlib import import_module
from typing import Any

# Importing the package registers the header translators (cheap) ...
from .translators import *

# ... while the instruments, camera and ISR task, which pull in lsst-images
# and pipe_base (seconds of start-up), load on first use: every ``butler``
# command imports this package through the CLI plugin.  The instrument
# classes (Vircam, DecamCp, Wfcam ...) are those registered in policy/
# (`lsst.obs.vista.discovery`), found by their class names.
_LAZY = {
    "CalibrateImageTask": ".calibrate",
    "CameraDescription": ".camera",
    "DetectorDescription": ".camera",
    "FilterDescription": ".camera",
    "DecamCpIsrTask": ".isr",
    "PolicyInstrument": ".instrument",
    "VistaIsrTask": ".isr",
}


# A process that imported this package (every ``butler`` command, through the
# CLI plugin, and every ``pipetask`` running its tasks) ends without the
# interpreter's last garbage collections: they only free memory the OS takes
# back anyway, and scanning the middleware's millions of objects took a
# quarter of a short command's CPU time.  The exit handlers registered after
# this one (cleanup of temporary directories, butler caches) run before it.
atexit.register(gc.freeze)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    if name in _instrument_class_names():
        return getattr(import_module(".instrument", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _instrument_class_names() -> list[str]:
    from .discovery import instrument_entries

    return [entry.class_name for entry in instrument_entries().values()]


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_instrument_class_names()])
