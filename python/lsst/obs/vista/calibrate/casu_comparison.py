"""Comparison of our measurements with the CASU catalogue of a stack:
reported, never used as a reference."""

from __future__ import annotations

__all__ = ("CasuCatalogComparisonConfig", "CasuCatalogComparisonTask")

from typing import ClassVar

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

import lsst.pex.config as pexConfig
from lsst.pipe.base import Struct

from .catalog_comparison import CatalogComparisonTask
from .skipped import say_skipped


class CasuCatalogComparisonConfig(pexConfig.Config):
    """Configuration for `CasuCatalogComparisonTask`."""

    matchRadius = pexConfig.Field[float](
        doc="Largest separation (pixels) of a source and a CASU catalogue entry to compare.",
        default=1.0,
        check=lambda value: value > 0,
    )
    casuFluxColumn = pexConfig.Field[str](
        doc="CASU flux (ADU) compared with our aperture-corrected PSF flux, for CASU's stellar sources.",
        default="Kron_flux",
    )
    minSignalToNoise = pexConfig.Field[float](
        doc="Smallest PSF-flux S/N of the sources whose fluxes are compared.",
        default=20.0,
        check=lambda value: value > 0,
    )


class CasuCatalogComparisonTask(CatalogComparisonTask):
    """Match our sources to the CASU catalogue and report position offsets
    and flux ratios in the output metadata (``CASU_*``).

    Notes
    -----
    CASU's ``X_coordinate``/``Y_coordinate`` are 1-based FITS pixels of the
    stack, whose first pixel is the exposure's (0, 0).  Fluxes are compared
    for sources CASU classifies as stellar (``Classification == -1``); where
    none is matched, one log line and ``SKIPPED_CASU_COMPARISON`` say so.

    The metadata entries are ``CASU_NMATCH``, ``CASU_OFFSET_MAS`` (median
    separation), ``CASU_FLUX_RATIO`` (median ours / CASU's) and
    ``CASU_NFLUX``.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = CasuCatalogComparisonConfig
    config: CasuCatalogComparisonConfig
    compares: ClassVar[bool] = True

    def run(self, sources: Table, catalog: Table, pixel_scale: float, *, name: str) -> Struct:
        # Docstring inherited.
        casu_x = np.asarray(catalog["X_coordinate"], dtype=float) - 1.0
        casu_y = np.asarray(catalog["Y_coordinate"], dtype=float) - 1.0
        metadata: dict[str, float | int | str | None] = {
            "CASU_NMATCH": 0,
            "CASU_OFFSET_MAS": None,
            "CASU_FLUX_RATIO": None,
            "CASU_NFLUX": 0,
        }
        if len(sources) and len(casu_x):
            positions = np.column_stack([np.asarray(sources["x"], float), np.asarray(sources["y"], float)])
            distance, index = cKDTree(np.column_stack([casu_x, casu_y])).query(
                positions, distance_upper_bound=self.config.matchRadius
            )
            matched = np.isfinite(distance)
            metadata["CASU_NMATCH"] = int(matched.sum())
            if matched.any():
                metadata["CASU_OFFSET_MAS"] = float(np.median(distance[matched]) * pixel_scale * 1000.0)
                ours = np.asarray(sources["psfInstFlux"], float)[matched]
                snr = ours / np.asarray(sources["psfInstFluxErr"], float)[matched]
                casu = np.asarray(catalog[self.config.casuFluxColumn], float)[index[matched]]
                stellar = np.asarray(catalog["Classification"], float)[index[matched]] == -1
                good = stellar & (snr >= self.config.minSignalToNoise) & (casu > 0)
                metadata["CASU_NFLUX"] = int(good.sum())
                if good.any():
                    metadata["CASU_FLUX_RATIO"] = float(np.median(ours[good] / casu[good]))
        matches = (
            f"{metadata['CASU_NMATCH']} of {len(sources)} sources match the CASU catalogue "
            f"({len(casu_x)} entries)"
        )
        if metadata["CASU_FLUX_RATIO"] is None:
            metadata.update(
                say_skipped(
                    self.log,
                    name,
                    "CASU_COMPARISON",
                    f"{matches}, none of them stellar with S/N >= {self.config.minSignalToNoise:g}; "
                    "no flux comparison",
                )
            )
        else:
            self.log.info("%s: %s; median flux ratio %.4f.", name, matches, metadata["CASU_FLUX_RATIO"])
        return Struct(metadata=metadata)
