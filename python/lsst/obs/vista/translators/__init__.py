"""Header translators for the instruments this package supports.

Importing this package registers them with `astro_metadata_translator`; the
``astro_metadata_translators`` entry point makes them available to
``astrometadata -p obs_vista translate``.
"""

from .vircam import *


def list_translators() -> list[str]:
    """Return the names of the translators this package registers.

    Used by the ``astro_metadata_translators`` entry point.
    """
    return [VircamTranslator.name]
