"""The butler formatter that applies this package's write recipes to
`lsst.images` exposures."""

from __future__ import annotations

__all__ = ("VisitImageFormatter", "WarpFormatter", "native_mask_layout")

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from lsst.images.fits import FitsCompressionOptions, FitsOutputArchive
from lsst.images.formatters import GenericFormatter
from lsst.resources import ResourcePath


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
    `~lsst.images.VisitImage` datasets of every instrument, and its subclass
    `WarpFormatter` for the intermediate warps (``direct_warp``, a
    `~lsst.images.cells.CellCoadd` whose cell PSF array is the ``psf``
    plane, and ``direct_warp_noise0``) with their own recipe.  The datastore
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


class WarpFormatter(VisitImageFormatter):
    """`VisitImageFormatter` for the intermediate warps (``direct_warp``,
    ``direct_warp_noise0``): their masks are written as one array in the
    in-memory layout (`native_mask_layout`).

    A warp is written once, by makeDirectWarp, and read once, a strip of
    cells at a time, by assembleCellCoadd, both through lsst-images, which
    reads either layout.  The default layout costs a conversion of every
    mask plane on each write and each strip read (``benchmarks/bench_coadd.py``
    measures both layouts).  ``config/butler/seed*.yaml`` select this class
    for the warps, with ``warp_write_recipes.yaml``.
    """

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        # Docstring inherited.
        with native_mask_layout():
            super().write_local_file(in_memory_dataset, uri)


@contextlib.contextmanager
def native_mask_layout() -> Iterator[None]:
    """Write masks to FITS, within the context, as lsst-images writes them
    to NDF: one ``(bytes, y, x)`` integer array holding the in-memory
    ``(y, x, bytes)`` mask, instead of one 32-bit image per 32 planes built
    plane by plane.

    lsst-images reads both layouts; a FITS reader that does not know the
    serialization tree sees a mask cube without the plane cards.
    """
    # Private: lsst-images offers the layout to FITS archives only through
    # the class flag its NDF archive sets, and the gain is large (the native
    # mask layout row of bench_coadd.py).  Needs upstream: a public write
    # option for the native mask layout (such as a FitsCompressionOptions field).
    previous = getattr(FitsOutputArchive, "_prefer_native_mask_arrays", False)
    FitsOutputArchive._prefer_native_mask_arrays = True
    try:
        yield
    finally:
        FitsOutputArchive._prefer_native_mask_arrays = previous
