"""Configuration of a skymap: the rings and discrete geometries, their tract
builders, and the ``butler register-skymap`` config that names one."""

from __future__ import annotations

__all__ = (
    "CellsTractBuilderConfig",
    "DiscreteSkyMapConfig",
    "LegacyTractBuilderConfig",
    "RegisterSkyMapConfig",
    "RingsSkyMapConfig",
    "ZENITHAL_PROJECTIONS",
    "apply_override",
)

import ast

import lsst.pex.config as pexConfig

ZENITHAL_PROJECTIONS = ("TAN", "STG", "SIN", "ARC", "ZEA")
"""FITS projection codes a tract WCS may use: zenithal projections, in which
points at one angular distance from the tract centre lie at one pixel
distance from it, so that a tract's pixel box is square."""


class LegacyTractBuilderConfig(pexConfig.Config):
    """Patches of a fixed inner size with a border, the outer boxes clipped
    to the tract (HSC's patches)."""

    patchInnerDimensions = pexConfig.ListField[int](
        doc="Size of a patch's inner region in pixels (x, y): the patches' inner regions tile the tract.",
        length=2,
        default=(4000, 4000),
    )
    patchBorder = pexConfig.Field[int](
        doc="Pixels by which a patch's outer region extends its inner region on each side (clipped to "
        "the tract), so that objects near a patch edge are measured whole in one patch.",
        default=100,
    )

    def patch_inner_dimensions(self) -> tuple[int, int]:
        """Return the patch inner size in pixels, (x, y)."""
        return (self.patchInnerDimensions[0], self.patchInnerDimensions[1])

    def patch_border(self) -> int:
        """Return the patch border in pixels."""
        return self.patchBorder

    def clips_outer_to_tract(self) -> bool:
        """Return whether patch outer boxes are clipped to the tract box."""
        return True

    def hash_integers(self) -> tuple[int, ...]:
        """Return the integers of this builder that the skymap's hash packs
        (patch inner x, y and border)."""
        x, y = self.patch_inner_dimensions()
        return (x, y, self.patchBorder)

    def validate(self) -> None:
        super().validate()
        if min(self.patchInnerDimensions) <= 0 or self.patchBorder < 0:
            raise pexConfig.FieldValidationError(
                LegacyTractBuilderConfig.patchInnerDimensions,
                self,
                "patch inner dimensions must be positive and the border non-negative",
            )


class CellsTractBuilderConfig(pexConfig.Config):
    """Patches made of whole cells, each cell with its own border (Rubin's
    cell-based coadds); patch outer boxes are not clipped."""

    cellInnerDimensions = pexConfig.ListField[int](
        doc="Size of a cell's inner region in pixels (x, y); a coadd cell has one set of inputs and so "
        "one continuous PSF.",
        length=2,
        default=(150, 150),
    )
    cellBorder = pexConfig.Field[int](
        doc="Pixels by which a cell's outer region extends its inner region on each side, so that the "
        "cell's PSF and images can be convolved without edge effects.",
        default=50,
    )
    numCellsPerPatchInner = pexConfig.Field[int](
        doc="Cells along each side of a patch's inner region.",
        default=20,
    )
    numCellsInPatchBorder = pexConfig.Field[int](
        doc="Whole cells by which a patch's outer region extends its inner region on each side.",
        default=1,
    )

    def patch_inner_dimensions(self) -> tuple[int, int]:
        """Return the patch inner size in pixels, (x, y)."""
        return (
            self.cellInnerDimensions[0] * self.numCellsPerPatchInner,
            self.cellInnerDimensions[1] * self.numCellsPerPatchInner,
        )

    def patch_border(self) -> int:
        """Return the patch border in pixels (whole cells; square cells are
        assumed for the border, as the border is one number)."""
        return self.cellInnerDimensions[0] * self.numCellsInPatchBorder

    def clips_outer_to_tract(self) -> bool:
        """Return whether patch outer boxes are clipped to the tract box."""
        return False

    def hash_integers(self) -> tuple[int, ...]:
        """Return the integers of this builder that the skymap's hash packs
        (cell inner x, y, cell border, cells per patch inner, cells in the
        patch border)."""
        return (
            self.cellInnerDimensions[0],
            self.cellInnerDimensions[1],
            self.cellBorder,
            self.numCellsPerPatchInner,
            self.numCellsInPatchBorder,
        )

    def validate(self) -> None:
        super().validate()
        if (
            min(self.cellInnerDimensions) <= 0
            or self.cellBorder < 0
            or self.numCellsPerPatchInner <= 0
            or self.numCellsInPatchBorder < 0
        ):
            raise pexConfig.FieldValidationError(
                CellsTractBuilderConfig.cellInnerDimensions,
                self,
                "cell sizes and cells per patch must be positive, borders non-negative",
            )
        if self.cellInnerDimensions[0] != self.cellInnerDimensions[1] and self.numCellsInPatchBorder:
            raise pexConfig.FieldValidationError(
                CellsTractBuilderConfig.cellInnerDimensions,
                self,
                "a patch border of whole cells needs square cells",
            )


_TRACT_BUILDERS = {"legacy": LegacyTractBuilderConfig, "cells": CellsTractBuilderConfig}


class _TractConfig(pexConfig.Config):
    """What every tract of a skymap shares: projection, scale, overlap and
    the way it is cut into patches."""

    projection = pexConfig.ChoiceField[str](
        doc="FITS projection code of the tract WCS, centred on the tract centre.",
        default="TAN",
        allowed={code: f"FITS {code} projection" for code in ZENITHAL_PROJECTIONS},
    )
    pixelScale = pexConfig.Field[float](
        doc="Pixel scale of the tract WCS at the tract centre, arcsec per pixel.",
        default=0.2,
        check=lambda value: value > 0,
    )
    tractOverlap = pexConfig.Field[float](
        doc="Degrees by which a tract extends past its share of the sky on each side, so that "
        "neighbouring tracts overlap and an object near a tract edge lies whole in one of them.",
        default=1.0 / 60,
        check=lambda value: value >= 0,
    )
    tractBuilder = pexConfig.ConfigChoiceField(
        doc="How a tract is cut into patches: 'cells' (Rubin's cell-based patches) or 'legacy' "
        "(HSC's patches).",
        typemap=_TRACT_BUILDERS,
        default="cells",
    )


class RingsSkyMapConfig(_TractConfig):
    """The whole sky in rings of constant declination, each cut into tracts
    of about equal size, and a tract on each pole (Rubin's and HSC's)."""

    numRings = pexConfig.Field[int](
        doc="Number of rings between the polar caps; the ring height is 180°/(numRings + 1).",
        default=120,
        check=lambda value: value > 0,
    )
    raStart = pexConfig.Field[float](
        doc="Right ascension, degrees, of the centre of the first tract of each ring.",
        default=0.0,
    )


class DiscreteSkyMapConfig(_TractConfig):
    """A list of tracts, each a circle around a given centre (one survey
    field, or a few)."""

    raList = pexConfig.ListField[float](doc="Right ascension of each tract centre, degrees.", default=[])
    decList = pexConfig.ListField[float](doc="Declination of each tract centre, degrees.", default=[])
    radiusList = pexConfig.ListField[float](
        doc="Radius of each tract, degrees: the tract's pixel box holds the circle of this radius plus "
        "tractOverlap.",
        default=[],
    )

    def validate(self) -> None:
        super().validate()
        if not self.raList or not (len(self.raList) == len(self.decList) == len(self.radiusList)):
            raise pexConfig.FieldValidationError(
                DiscreteSkyMapConfig.raList,
                self,
                "raList, decList and radiusList must have one entry per tract, and at least one",
            )
        if any(not -90 <= dec <= 90 for dec in self.decList) or any(r <= 0 for r in self.radiusList):
            raise pexConfig.FieldValidationError(
                DiscreteSkyMapConfig.decList, self, "declinations must be in [-90, 90] and radii positive"
            )


class RegisterSkyMapConfig(pexConfig.Config):
    """A named skymap, as ``butler register-skymap`` registers it."""

    name = pexConfig.Field[str](
        doc="Name of the skymap: the value of the ``skymap`` dimension of its tracts and patches.",
        optional=False,
    )
    skyMap = pexConfig.ConfigChoiceField(
        doc="The skymap's geometry: 'rings' (the whole sky) or 'discrete' (given tracts).",
        typemap={"rings": RingsSkyMapConfig, "discrete": DiscreteSkyMapConfig},
        default="rings",
    )


def apply_override(config: pexConfig.Config, key: str, value: str) -> None:
    """Apply one ``-c key=value`` override to a config.

    Parameters
    ----------
    config : `lsst.pex.config.Config`
        Config to change.
    key : `str`
        Dotted path of the field; a choice of a `~lsst.pex.config.ConfigChoiceField`
        is a path element (``skyMap.rings.numRings``).
    value : `str`
        The value: a Python literal (``4``, ``0.5``, ``(150, 150)``), else
        the string itself.

    Raises
    ------
    KeyError
        Raised if ``key`` names no field.
    """
    *path, leaf = key.split(".")
    target = config
    for part in path:
        if isinstance(target, pexConfig.configChoiceField.ConfigInstanceDict):
            target = target[part]
        elif part in target:
            target = getattr(target, part)
        else:
            raise KeyError("no such config field")
    is_choice = isinstance(target, pexConfig.configChoiceField.ConfigInstanceDict)
    if not (is_choice and leaf in ("name", "names")) and leaf not in target:
        raise KeyError("no such config field")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    setattr(target, leaf, parsed)
