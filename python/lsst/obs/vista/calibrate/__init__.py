"""Single-frame processing after isr: `CalibrateImageTask` (label
``calibrateImage``) and its retargetable stages (background, detection,
measurement, PSF, aperture correction, astrometry, photometry), built on
sep, Piff, GalSim, astropy and scipy, writing Rubin's
``preliminary_visit_image``, ``preliminary_visit_image_background`` and
``single_visit_star``."""

from importlib import import_module
from typing import Any

# The stages load on first use, as the package's top level does: a process
# that needs one of them (coadd and object tasks import the noise
# correlation) does not pay for Piff, GalSim and the reference-catalogue
# machinery of all the others.
_LAZY = {
    "ApertureCorrectionConfig": ".aperture_correction",
    "ApertureCorrectionTask": ".aperture_correction",
    "AstrometryConfig": ".astrometry",
    "AstrometryTask": ".astrometry",
    "match_to_reference": ".astrometry",
    "MeshBackgroundConfig": ".background",
    "MeshBackgroundTask": ".background",
    "find_quantization_step": ".background",
    "spline_nodes": ".background",
    "CasuCatalogComparisonConfig": ".casu_comparison",
    "CasuCatalogComparisonTask": ".casu_comparison",
    "add_calibrated_fluxes": ".catalog",
    "add_sky_coordinates": ".catalog",
    "classify_extendedness": ".catalog",
    "usable_for_calibration": ".catalog",
    "CatalogComparisonTask": ".catalog_comparison",
    "ColumnDefinition": ".columns",
    "column_definitions": ".columns",
    "describe_columns": ".columns",
    "SourceDetectionConfig": ".detection",
    "SourceDetectionTask": ".detection",
    "PIXEL_FLAG_PLANES": ".measurement",
    "UNUSABLE_PIXEL_FLAGS": ".measurement",
    "SourceMeasurementConfig": ".measurement",
    "SourceMeasurementTask": ".measurement",
    "aperture_column": ".measurement",
    "fit_psf_fluxes": ".measurement",
    "correlation_error_factor": ".noise_correlation",
    "measure_noise_correlation": ".noise_correlation",
    "ColorTermConfig": ".photometry",
    "PhotometryConfig": ".photometry",
    "PhotometryTask": ".photometry",
    "match_by_position": ".photometry",
    "reference_magnitudes": ".photometry",
    "PiffPsfDeterminerConfig": ".psf",
    "PiffPsfDeterminerTask": ".psf",
    "PsfStarSelectorConfig": ".psf",
    "PsfStarSelectorTask": ".psf",
    "SKIPPED_PREFIX": ".skipped",
    "say_skipped": ".skipped",
    "MIN_NOISE_PIXELS": ".summary",
    "background_noise": ".summary",
    "make_summary_stats": ".summary",
    "pixel_scale_at_centre": ".summary",
    "zenith_distance": ".summary",
    "CalibrateImageConfig": ".task",
    "CalibrateImageConnections": ".task",
    "CalibrateImageTask": ".task",
}
"""The submodule that defines each public name (the union of their ``__all__``)."""

__all__ = tuple(sorted(_LAZY))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
