"""The hook through which calibrateImage compares its measurements with a
catalogue delivered beside the image (reported, never used as a reference)."""

from __future__ import annotations

__all__ = ("CatalogComparisonTask",)

from typing import ClassVar

from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.pipe.base import Struct, Task


class CatalogComparisonTask(Task):
    """Base of the comparisons of measured sources with a delivered catalogue.

    Each producer's catalogue has its own columns, so an instrument that
    delivers one retargets ``calibrateImage``'s ``catalogComparison`` to a
    subclass (CASU's: `lsst.obs.vista.calibrate.CasuCatalogComparisonTask`)
    and turns ``doCompareCatalog`` on; this base compares nothing.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = pexConfig.Config
    _DefaultName: ClassVar[str] = "catalogComparison"

    compares: ClassVar[bool] = False
    """Whether the task compares anything (`False` for this base)."""

    def run(self, sources: Table, catalog: Table, pixel_scale: float, *, name: str) -> Struct:
        """Compare.

        Parameters
        ----------
        sources : `astropy.table.Table`
            Our measured sources (``x``, ``y``, ``psfInstFlux``,
            ``psfInstFluxErr``).
        catalog : `astropy.table.Table`
            The delivered catalogue.
        pixel_scale : `float`
            Arcsec per pixel, for offsets in mas.
        name : `str`
            What to call the exposure in log messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``metadata``: entries for the output's metadata (none here).
        """
        return Struct(metadata={})
