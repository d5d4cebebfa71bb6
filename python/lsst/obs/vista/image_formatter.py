"""The butler formatter of this package's `lsst.images` outputs."""

from __future__ import annotations

__all__ = ("VisitImageFormatter",)

from collections.abc import Mapping
from typing import Any

from lsst.images.fits import FitsCompressionOptions
from lsst.images.formatters import GenericFormatter


class VisitImageFormatter(GenericFormatter):
    """`lsst.images.formatters.GenericFormatter` for exposures whose
    observation info comes from this package's header translators, with
    write recipes that may leave planes uncompressed.

    A VIRCAM exposure's `~astro_metadata_translator.ObservationInfo` holds
    extension properties (``ext_product``, ...) whose definitions only the
    ``VIRCAM`` translator has, and astro_metadata_translator registers a
    translator when its module is imported: its ``astro_metadata_translators``
    entry points are loaded by the ``astrometadata`` command only.  The
    datastore imports a dataset's formatter by the name it recorded at
    write time, and importing this module imports `lsst.obs.vista`, which
    registers the translators; so a plain ``Butler(repo).get(...)`` reads the
    exposure in any Python process.  ``config/butler/seed.yaml`` selects this
    formatter for the `~lsst.images.VisitImage` datasets of every instrument.

    Write recipes (the datastore's ``formatters.write_recipes`` entry for
    this class, chosen by the ``recipe`` write parameter) map a plane name
    (``image``, ``mask``, ``variance``) to its
    `~lsst.images.fits.FitsCompressionOptions`, as for the base class; a
    plane given as ``null`` is written as a plain, uncompressed image HDU,
    the fastest to write and to read.  Planes a recipe does not name get
    lsst-images' default (lossless ``GZIP_2``).
    """

    @classmethod
    def validate_write_recipes(cls, recipes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        # Docstring inherited.
        for name, recipe in (recipes or {}).items():
            for plane, options in recipe.items():
                if options is not None:
                    try:
                        FitsCompressionOptions.model_validate(options)
                    except Exception as err:
                        err.add_note(f"write recipe {name!r}, plane {plane!r}")
                        raise
        return recipes

    def _get_compression_options(self) -> dict[str, FitsCompressionOptions | None]:
        # Docstring inherited; a null plane is stored uncompressed.
        recipe = self.write_parameters.get("recipe", "default")
        if recipe not in self.write_recipes:
            return super()._get_compression_options()
        return {
            plane: None if options is None else FitsCompressionOptions.model_validate(options)
            for plane, options in self.write_recipes[recipe].items()
        }
