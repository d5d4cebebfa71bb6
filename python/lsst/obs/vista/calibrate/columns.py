"""Descriptions and units of the ``single_visit_star`` columns.

Column names, units and type classes follow Rubin's DP1 ``Source`` table
where a column is one of Rubin's (``id`` is its ``sourceId``); the
descriptions say what this package measures.
"""

from __future__ import annotations

__all__ = ("ColumnDefinition", "column_definitions", "describe_columns")

from dataclasses import dataclass

import astropy.units as u
from astropy.table import Table

from .measurement import PIXEL_FLAG_PLANES, aperture_column

_PIXEL = u.pix
_PIXEL2 = u.pix**2


@dataclass(frozen=True)
class ColumnDefinition:
    """What a column holds.

    Parameters
    ----------
    description : `str`
        One sentence: what the column holds and, for a flag, when it is
        `True`.
    unit : `astropy.units.UnitBase` or `None`
        Unit of the values; `None` for flags, IDs, names and dimensionless
        numbers.
    """

    description: str
    unit: u.UnitBase | None = None


def column_definitions(
    image_unit: u.UnitBase | None, aperture_radii: list[float], reference_radius: float
) -> dict[str, ColumnDefinition]:
    """Return the definition of every ``single_visit_star`` column, in table order.

    Parameters
    ----------
    image_unit : `astropy.units.UnitBase` or `None`
        Unit of the exposure's pixels: the unit of instrumental fluxes.
    aperture_radii : `list` [`float`]
        Radii (pixels) of the circular aperture fluxes.
    reference_radius : `float`
        Radius (pixels) of the aperture the PSF fluxes are corrected to.

    Returns
    -------
    definitions : `dict` [`str`, `ColumnDefinition`]
        By column name.
    """
    reference = aperture_column(reference_radius)
    definitions = {
        "id": ColumnDefinition(
            "Source ID, unique in the repository: visit, detector and row packed into 64 bits "
            "(lsst.obs.vista.source_id)."
        ),
        "visit": ColumnDefinition("ID of the visit the source was measured on."),
        "detector": ColumnDefinition("ID of the detector the source was measured on."),
        "band": ColumnDefinition("Band of the exposure the source was measured on."),
        "coord_ra": ColumnDefinition(
            "ICRS right ascension of the centroid through the calibrated WCS (the header WCS where "
            "astrometry did not run).",
            u.deg,
        ),
        "coord_dec": ColumnDefinition("ICRS declination of the centroid, as coord_ra.", u.deg),
        "x": ColumnDefinition(
            "Column of the centroid (parent pixel coordinates): windowed position with a Gaussian window "
            "of the PSF's sigma.",
            _PIXEL,
        ),
        "y": ColumnDefinition("Row of the centroid (parent pixel coordinates), as x.", _PIXEL),
        "xErr": ColumnDefinition(
            "1-sigma uncertainty of x: the Cramer-Rao bound of a PSF fit, scaled for correlated noise.",
            _PIXEL,
        ),
        "yErr": ColumnDefinition("1-sigma uncertainty of y, as xErr.", _PIXEL),
        "centroid_flag": ColumnDefinition(
            "True if the windowed centroid failed or moved more than 2 PSF sigma from the detection; x "
            "and y are then the detection's position."
        ),
        "psfInstFlux": ColumnDefinition(
            "Flux of a least-squares fit of the PSF model at the centroid, in image units, "
            f"aperture-corrected to the {reference_radius:g}-pixel aperture.",
            image_unit,
        ),
        "psfInstFluxErr": ColumnDefinition(
            "1-sigma uncertainty of psfInstFlux from the variance plane, scaled for correlated noise.",
            image_unit,
        ),
        "psfFlux_flag": ColumnDefinition(
            "True if the PSF fit failed: no usable pixel under the PSF or no positive uncertainty."
        ),
    }
    for radius in aperture_radii:
        prefix = aperture_column(radius)
        definitions |= {
            f"{prefix}InstFlux": ColumnDefinition(
                f"Flux within a {radius:g}-pixel circular aperture, in image units, masked pixels left out.",
                image_unit,
            ),
            f"{prefix}InstFluxErr": ColumnDefinition(
                f"1-sigma uncertainty of {prefix}InstFlux from the variance plane, scaled for correlated "
                "noise.",
                image_unit,
            ),
            f"{prefix}Flux_flag": ColumnDefinition(
                f"True if the {radius:g}-pixel aperture leaves the image or holds masked pixels."
            ),
        }
    definitions |= {
        "ixx": ColumnDefinition(
            "Adaptive second moment xx of the source (GalSim HSM), PSF included.", _PIXEL2
        ),
        "iyy": ColumnDefinition("Adaptive second moment yy of the source, as ixx.", _PIXEL2),
        "ixy": ColumnDefinition("Adaptive second moment xy of the source, as ixx.", _PIXEL2),
        "shape_flag": ColumnDefinition("True if the adaptive moments failed; ixx, iyy and ixy are then NaN."),
        "psf_ixx": ColumnDefinition("Second moment xx of the PSF model at the source.", _PIXEL2),
        "psf_iyy": ColumnDefinition("Second moment yy of the PSF model at the source.", _PIXEL2),
        "pixelFlags_edge": ColumnDefinition(
            "True if the PSF model's stamp around the source leaves the image."
        ),
    }
    for name, plane in PIXEL_FLAG_PLANES.items():
        definitions[f"pixelFlags_{name}"] = ColumnDefinition(
            f"True if a {plane} pixel lies where the PSF around the source is above a fraction of its peak "
            "(measurement.psfCoreFraction); False if the mask has no such plane."
        )
    for name, plane in PIXEL_FLAG_PLANES.items():
        definitions[f"pixelFlags_{name}Center"] = ColumnDefinition(
            f"True if a {plane} pixel lies in the 3x3 pixels at the centroid; False if the mask has no "
            "such plane."
        )
    definitions |= {
        "deblend_blended": ColumnDefinition(
            "True if detection split the source from neighbours that share its footprint."
        ),
        "calib_psf_candidate": ColumnDefinition("True if the source was selected as a PSF star candidate."),
        "calib_psf_used": ColumnDefinition("True if the source was used to fit the PSF model."),
        "calib_psf_reserved": ColumnDefinition(
            "True if the source was a PSF candidate held out of the PSF fit for validation."
        ),
        "extendedness": ColumnDefinition(
            f"0 if point-like, 1 if extended: psfInstFlux below a fraction of {reference}InstFlux by more "
            "than 2 sigma (extendednessFluxRatio); NaN if the ratio is undefined."
        ),
        "sizeExtendedness": ColumnDefinition(
            "0 if point-like, 1 if extended: ixx + iyy above a multiple of the PSF's by more than 2 sigma "
            "(extendednessSizeRatio); NaN without moments."
        ),
        "calib_astrometry_used": ColumnDefinition("True if the source was used to fit the WCS."),
        "calib_photometry_used": ColumnDefinition("True if the source was used to fit the zero point."),
    }
    for prefix in ["psf", *(aperture_column(radius) for radius in aperture_radii)]:
        definitions |= {
            f"{prefix}Flux": ColumnDefinition(
                f"{prefix}InstFlux calibrated by the zero point; NaN without a zero point.", u.nJy
            ),
            f"{prefix}FluxErr": ColumnDefinition(f"1-sigma uncertainty of {prefix}Flux.", u.nJy),
            f"{prefix}Mag": ColumnDefinition(f"AB magnitude of {prefix}Flux; NaN unless positive.", u.ABmag),
            f"{prefix}MagErr": ColumnDefinition(f"1-sigma uncertainty of {prefix}Mag.", u.mag),
        }
    return definitions


def describe_columns(sources: Table, definitions: dict[str, ColumnDefinition]) -> Table:
    """Return the catalogue with every column described, in definition order.

    Parameters
    ----------
    sources : `astropy.table.Table`
        The measured catalogue.
    definitions : `dict` [`str`, `ColumnDefinition`]
        From `column_definitions`.

    Returns
    -------
    described : `astropy.table.Table`
        The same columns (not copied), each with its description and unit,
        in the order of ``definitions``; the table metadata is kept.

    Raises
    ------
    KeyError
        Raised if a column has no definition, or a definition no column.
    """
    undefined = set(sources.colnames) - set(definitions)
    missing = set(definitions) - set(sources.colnames)
    if undefined or missing:
        raise KeyError(
            f"single_visit_star columns without a definition: {sorted(undefined)}; "
            f"definitions without a column: {sorted(missing)}"
        )
    described = Table([sources[name] for name in definitions], meta=sources.meta, copy=False)
    for name, definition in definitions.items():
        column = described[name]
        column.description = definition.description
        column.unit = definition.unit
    return described
