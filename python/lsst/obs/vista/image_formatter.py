"""The butler formatter that applies this package's write recipes to
`lsst.images` exposures."""

from __future__ import annotations

__all__ = ("VisitImageFormatter",)

from collections.abc import Mapping
from typing import Any

from lsst.images.fits import FitsCompressionOptions
from lsst.images.formatters import GenericFormatter


class VisitImageFormatter(GenericFormatter):
    """`lsst.images.formatters.GenericFormatter` with write recipes that may
    leave planes uncompressed.

    Write recipes (the datastore's ``formatters.write_recipes`` entry for
    this class, chosen by the ``recipe`` write parameter) map a plane name
    (``image``, ``mask``, ``variance``) to its
    `~lsst.images.fits.FitsCompressionOptions`, as for the base class; a
    plane given as ``null`` is written as a plain, uncompressed image HDU,
    the fastest to write and to read.  Planes a recipe does not name get
    lsst-images' default (lossless ``GZIP_2``).

    ``config/butler/seed*.yaml`` select this formatter for the
    `~lsst.images.VisitImage` datasets of every instrument, and for the
    intermediate warps (``direct_warp``, a `~lsst.images.cells.CellCoadd`
    whose cell PSF array is the ``psf`` plane, and ``direct_warp_noise0``)
    with their own recipe.  The datastore
    records the formatter of each file and imports it to read the file back,
    so reading one written by this class needs this package installed; the
    exposures themselves (standard observation info, see
    `lsst.obs.vista.isr.standard_observation_info`) need nothing else.  A
    repository created without a seed writes them with the base class and
    lsst-images' default compression, which is the ``lossless`` recipe.
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

    # The one private override: GenericFormatter's recipes admit only FitsCompressionOptions per plane
    # and offer no public hook for the options it writes with (benchmarks/bench_write_recipes.py
    # measures what uncompressed planes save).  Needs upstream: lsst-images write recipes that accept
    # a null (uncompressed) plane, after which this class reduces to the seed configuration.
    def _get_compression_options(self) -> dict[str, FitsCompressionOptions | None]:
        # Docstring inherited; a null plane is stored uncompressed.
        recipe = self.write_parameters.get("recipe", "default")
        if recipe not in self.write_recipes:
            return super()._get_compression_options()
        return {
            plane: None if options is None else FitsCompressionOptions.model_validate(options)
            for plane, options in self.write_recipes[recipe].items()
        }
