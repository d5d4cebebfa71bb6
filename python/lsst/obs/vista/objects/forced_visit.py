"""forcedPhotCcd: the tract's objects measured on one detector of one visit
(Rubin's ``object_forced_source``), and an object's light curve from the
butler.

The quantum is (instrument, visit, detector, skymap, tract), as Rubin's
forcedPhotCcd: one detector image and the one ``object`` table of a tract
it overlaps.  A detector that reaches two tracts is measured once per
tract, each object by the tract that counts it (``detect_isPrimary``), so
an object has one row per detector image that covers it.

The PSF flux is the least-squares amplitude of the visit's own PSF model
(the Piff model calibrateImage fitted) at the object's position through the
visit's WCS, with the pixel fit of single-frame measurement
(`~lsst.obs.vista.calibrate.measurement.fit_psf_fluxes`), converted to nJy
with the visit's photometric calibration at that pixel after the visit's
aperture correction of PSF fluxes (as calibrateImage's own PSF fluxes were,
when it fitted the zero point).  The error is the
variance plane's times ``NOISE_CORR_PSF``, the factor for the pixel noise
correlation that calibrateImage measured on the same image (1 if absent).
"""

from __future__ import annotations

__all__ = (
    "FORCED_SOURCE_DESCRIPTIONS",
    "ForcedPhotCcdConfig",
    "ForcedPhotCcdConnections",
    "ForcedPhotCcdTask",
    "light_curve",
)

from collections.abc import Iterable
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.time import Time

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import Butler
from lsst.images import VisitImage
from lsst.pipe.base import (
    InputQuantizedConnection,
    NoWorkFound,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..calibrate.aperture_correction import PSF_FLUX_ALGORITHM
from ..calibrate.measurement import PIXEL_FLAG_PLANES, UNUSABLE_PIXEL_FLAGS, fit_psf_fluxes
from ..isr.pipeline_task import data_id_text
from .object_id import unpack_object_ids

FORCED_SOURCE_DESCRIPTIONS: dict[str, tuple[str, u.UnitBase | None]] = {
    "objectId": ("objectId of the measured object in the tract's object table.", None),
    "coord_ra": ("ICRS right ascension of the object (the object table's), where it was measured.", u.deg),
    "coord_dec": ("ICRS declination of the object, as coord_ra.", u.deg),
    "tract": ("Skymap tract of the object.", None),
    "patch": ("Skymap patch of the object.", None),
    "visit": ("Visit of the measurement.", None),
    "detector": ("Detector of the measurement.", None),
    "band": ("Band of the visit.", None),
    "midpointMjdTai": ("Midpoint of the exposure, MJD in TAI.", u.d),
    "x": ("Column of the object on the detector (pixels), through the visit's WCS.", u.pix),
    "y": ("Row of the object on the detector (pixels), as x.", u.pix),
    "psfFlux": ("Least-squares amplitude of the visit's PSF model at the object, forced.", u.nJy),
    "psfFluxErr": ("1-sigma uncertainty of psfFlux, with the image's pixel noise correlation.", u.nJy),
    "psfFlux_flag": ("True if the PSF flux failed (no usable pixel or no valid error).", None),
    "pixelFlags_edge": ("True if the PSF model's stamp leaves the detector.", None),
}
"""Descriptions and units of ``object_forced_source``'s columns, beside the
``pixelFlags_<name>`` ones."""


class ForcedPhotCcdConnections(
    PipelineTaskConnections, dimensions=("instrument", "visit", "detector", "skymap", "tract")
):
    visit_image = cT.Input(
        doc="The calibrated detector image with its PSF model and photometric calibration.",
        name="preliminary_visit_image",
        storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
    )
    objects = cT.Input(
        doc="The tract's objects.",
        name="object",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract"),
    )
    forced_source = cT.Output(
        doc="The tract's primary objects on the detector, measured at their positions.",
        name="object_forced_source",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector", "skymap", "tract"),
    )


class ForcedPhotCcdConfig(PipelineTaskConfig, pipelineConnections=ForcedPhotCcdConnections):
    """Configuration for `ForcedPhotCcdTask`."""

    psfCoreFraction = pexConfig.Field[float](
        doc="pixelFlags_<name> are set by mask bits where the PSF is above this fraction of its peak.",
        default=0.01,
        check=lambda value: 0 < value < 1,
    )
    primaryOnly = pexConfig.Field[bool](
        doc=(
            "Measure only the rows with detect_isPrimary, so that an object has one row per image; "
            "off, deblended parents and the patch and tract overlaps are measured too."
        ),
        default=True,
    )


class ForcedPhotCcdTask(PipelineTask):
    """Measure a tract's objects on one detector image of a visit."""

    ConfigClass: ClassVar = ForcedPhotCcdConfig
    _DefaultName: ClassVar[str] = "forcedPhotCcd"
    config: ForcedPhotCcdConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        inputs = butlerQC.get(inputRefs)
        data_id = butlerQC.quantum.dataId
        result = self.run(
            **inputs,
            visit=int(data_id["visit"]),
            detector=int(data_id["detector"]),
            band=str(data_id["band"]),
            name=data_id_text(data_id),
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        visit_image: VisitImage,
        objects: Table,
        *,
        visit: int,
        detector: int,
        band: str | None = None,
        name: str = "",
    ) -> Struct:
        """Measure the objects that fall on a detector image.

        Parameters
        ----------
        visit_image : `lsst.images.VisitImage`
            ``preliminary_visit_image``: background-subtracted pixels, PSF
            model, WCS and photometric calibration.
        objects : `astropy.table.Table`
            The tract's ``object`` table (``objectId``, ``coord_ra``,
            ``coord_dec``, ``detect_isPrimary``).
        visit, detector : `int`
            The image's data ID.
        band : `str`, optional
            The visit's band (the data ID's); the image's if not given.
        name : `str`, optional
            The quantum's data ID, for messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``forced_source`` (`astropy.table.Table`): one row per object
            on the image, `FORCED_SOURCE_DESCRIPTIONS`' columns.

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if the image has no photometric calibration or no object
            falls on it.
        """
        if visit_image.photometric_scaling is None:
            raise NoWorkFound(f"{name}: the image has no photometric calibration; no forced photometry.")
        if self.config.primaryOnly:
            objects = objects[np.asarray(objects["detect_isPrimary"], dtype=bool)]
        bbox = visit_image.bbox
        sky = SkyCoord(
            np.asarray(objects["coord_ra"], dtype=float) * u.deg,
            np.asarray(objects["coord_dec"], dtype=float) * u.deg,
        )
        pixels = visit_image.sky_projection.sky_to_pixel(sky)
        x, y = (
            np.atleast_1d(np.asarray(pixels.x, dtype=float)),
            np.atleast_1d(np.asarray(pixels.y, dtype=float)),
        )
        with np.errstate(invalid="ignore"):
            inside = (
                (x >= bbox.x.start - 0.5)
                & (x < bbox.x.stop - 0.5)
                & (y >= bbox.y.start - 0.5)
                & (y < bbox.y.stop - 0.5)
            )
        if not inside.any():
            raise NoWorkFound(f"{name}: none of the tract's {len(objects)} objects falls on the image.")
        objects, x, y = objects[inside], x[inside], y[inside]
        mask = visit_image.mask
        planes = {n: mask.get(p) for n, p in PIXEL_FLAG_PLANES.items() if p in mask.schema.names}
        # The pixels single-frame measurement leaves out.
        unusable = np.zeros(bbox.shape, dtype=bool)
        for flag in UNUSABLE_PIXEL_FLAGS:
            if flag in planes:
                unusable |= planes[flag]
        image = visit_image.image.array
        variance = visit_image.variance.array
        unusable |= ~np.isfinite(image) | ~np.isfinite(variance)
        data = np.where(unusable, 0.0, image)
        fit = fit_psf_fluxes(
            data,
            np.where(unusable, 0.0, variance),
            unusable,
            planes,
            bbox,
            x,
            y,
            visit_image.psf,
            self.config.psfCoreFraction,
        )
        scaling = visit_image.photometric_scaling.render(bbox).quantity.to_value(u.nJy / visit_image.unit)
        rows = np.clip(np.round(y).astype(int) - bbox.y.start, 0, bbox.y.size - 1)
        columns = np.clip(np.round(x).astype(int) - bbox.x.start, 0, bbox.x.size - 1)
        nanojansky = scaling[rows, columns]
        noise_factor = float(visit_image.metadata.get("NOISE_CORR_PSF", 1.0))
        # The aperture correction calibrateImage applied to its PSF fluxes before the zero point.
        apcorr = visit_image.aperture_corrections.get(PSF_FLUX_ALGORITHM)
        if apcorr is not None:
            nanojansky = nanojansky * np.asarray(apcorr(x=x, y=y), dtype=float)
        object_ids = np.asarray(objects["objectId"], dtype=np.int64)
        tract, patch, _ = unpack_object_ids(object_ids)
        n = len(objects)
        table = Table()
        table["objectId"] = object_ids
        table["coord_ra"] = np.asarray(objects["coord_ra"], dtype=float)
        table["coord_dec"] = np.asarray(objects["coord_dec"], dtype=float)
        table["tract"] = tract
        table["patch"] = patch
        table["visit"] = np.full(n, visit, dtype=np.int64)
        table["detector"] = np.full(n, detector, dtype=np.int64)
        table["band"] = np.full(n, band or visit_image.band or "", dtype=object).astype(str)
        table["midpointMjdTai"] = np.full(n, _midpoint_mjd_tai(visit_image))
        table["x"], table["y"] = x, y
        table["psfFlux"] = fit.flux * nanojansky
        table["psfFluxErr"] = fit.error * nanojansky * noise_factor
        table["psfFlux_flag"] = ~np.isfinite(table["psfFlux"]) | ~(np.asarray(table["psfFluxErr"]) > 0)
        table["pixelFlags_edge"] = fit.edge
        for flag in PIXEL_FLAG_PLANES:
            table[f"pixelFlags_{flag}"] = fit.flags.get(flag, np.zeros(n, dtype=bool))
            table[f"pixelFlags_{flag}Center"] = fit.center_flags.get(flag, np.zeros(n, dtype=bool))
        _describe(table)
        self.log.info("%s: %d object(s) measured.", name, n)
        return Struct(forced_source=table)


def _midpoint_mjd_tai(visit_image: VisitImage) -> float:
    """Return the exposure's midpoint, MJD (TAI), or NaN if unknown."""
    obs_info = visit_image.obs_info
    if obs_info is None or obs_info.datetime_begin is None:
        return float("nan")
    begin = Time(obs_info.datetime_begin)
    if obs_info.exposure_time is not None:
        begin = begin + 0.5 * obs_info.exposure_time
    return float(begin.tai.mjd)


def _describe(table: Table) -> None:
    """Set the description and unit of every column of ``table``."""
    for name in table.colnames:
        if name.startswith("pixelFlags_") and name != "pixelFlags_edge":
            plane = name.removeprefix("pixelFlags_")
            where = "in the 3x3 pixels at the object" if plane.endswith("Center") else "in the PSF core"
            table[
                name
            ].description = f"True if a {PIXEL_FLAG_PLANES[plane.removesuffix('Center')]} pixel lies {where}."
            continue
        description, unit = FORCED_SOURCE_DESCRIPTIONS[name]
        table[name].description = description
        if unit is not None:
            table[name].unit = unit


def light_curve(
    butler: Butler,
    object_id: int,
    *,
    skymap: str,
    collections: str | Iterable[str] | None = None,
    dataset_type: str = "object_forced_source",
) -> Table:
    """Return an object's light curve: its ``object_forced_source`` rows.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    object_id : `int`
        The object's ``objectId``; its tract is packed in it.
    skymap : `str`
        The skymap of the object table (object IDs are unique per skymap).
    collections : `str` or iterable of `str`, optional
        Collections to search; the butler's defaults if not given.
    dataset_type : `str`, optional
        The forced-source dataset type.

    Returns
    -------
    light_curve : `astropy.table.Table`
        The object's measurements on every visit and detector that covers
        it, by ``midpointMjdTai`` and visit; no row if none.
    """
    tract = int(unpack_object_ids(np.array([object_id], dtype=np.int64))[0][0])
    refs = butler.query_datasets(
        dataset_type,
        collections=collections,
        where="skymap = skymap_name AND tract = tract_id",
        bind={"skymap_name": skymap, "tract_id": tract},
        explain=False,
    )
    pieces = []
    for ref in refs:
        table = butler.get(ref)
        pieces.append(table[np.asarray(table["objectId"]) == object_id])
    if not pieces:
        return Table()
    result = vstack(pieces, metadata_conflicts="silent")
    result.sort(["midpointMjdTai", "visit", "detector"])
    return result
