"""The butler formatter of this package's `lsst.images` outputs."""

from __future__ import annotations

__all__ = ("VisitImageFormatter",)

from lsst.images.formatters import GenericFormatter


class VisitImageFormatter(GenericFormatter):
    """`lsst.images.formatters.GenericFormatter` for exposures whose
    observation info comes from this package's header translators.

    A VIRCAM exposure's `~astro_metadata_translator.ObservationInfo` holds
    extension properties (``ext_product``, ...) whose definitions only the
    ``VIRCAM`` translator has, and astro_metadata_translator registers a
    translator when its module is imported: its ``astro_metadata_translators``
    entry points are loaded by the ``astrometadata`` command only.  The
    datastore imports a dataset's formatter by the name it recorded at
    write time, and importing this module imports `lsst.obs.vista`, which
    registers the translators; so a plain ``Butler(repo).get(...)`` reads the
    exposure in any Python process.  ``config/butler/seed.yaml`` selects this
    formatter for the instrument's exposures.
    """
