"""Header translators for the instruments this package supports.

Importing this package registers the translators of every registered
instrument (`lsst.obs.vista.discovery`) with `astro_metadata_translator`; the
``astro_metadata_translators`` entry point makes them available to
``astrometadata -p obs_vista translate``.
"""

from ..discovery import instrument_entries as _instrument_entries
from .casu import *
from .vircam import *


def list_translators() -> list[str]:
    """Return the names of the translators the registered instruments bring
    (not those astro_metadata_translator ships itself, such as DECam's).

    Used by the ``astro_metadata_translators`` entry point.
    """
    translators = (entry.translator_class() for entry in _instrument_entries().values())
    return [t.name for t in translators if not t.__module__.startswith("astro_metadata_translator.")]


for _entry in _instrument_entries().values():
    _entry.translator_class()
