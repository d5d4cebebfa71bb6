"""Butler instruments whose camera knowledge lives in ``policy/``."""

from __future__ import annotations

__all__ = ("DecamCp", "PolicyInstrument", "Vircam")

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from lsst.pipe.base import Instrument
from lsst.utils.introspection import get_full_type_name

from ._resources import CONFIG_DIR, POLICY_DIR
from .camera import CameraDescription

if TYPE_CHECKING:
    from lsst.daf.butler import DataId, Formatter, FormatterV2, Registry


class PolicyInstrument(Instrument):
    """An instrument described by ``policy/<policyName>/camera.yaml``.

    Subclasses set `policyName`, the ID limits and the raw formatter; the
    detectors and filters they register come from the camera description.
    """

    policyName: ClassVar[str]
    exposure_max: ClassVar[int]
    """Exclusive upper bound of exposure (and visit) IDs."""

    raw_formatter_name: ClassVar[str]
    """Fully-qualified name of the formatter for raw-like datasets."""

    @classmethod
    def camera(cls) -> CameraDescription:
        """Return the camera description (read once per process)."""
        return _read_camera(POLICY_DIR / cls.policyName / "camera.yaml")

    @property
    def configPaths(self) -> list[str]:  # type: ignore[override]
        """Directories with ``<taskDefaultName>.py`` override files: the
        package-wide ``config/`` and then ``config/<policyName>/``."""
        return [str(path) for path in (CONFIG_DIR, CONFIG_DIR / self.policyName) if path.is_dir()]

    def register(self, registry: Registry, *, update: bool = False) -> None:
        """Insert the instrument, its detectors, physical filters and the
        one-to-one visit system into a butler registry.

        Parameters
        ----------
        registry : `lsst.daf.butler.Registry`
            Registry client for the data repository to modify.
        update : `bool`, optional
            If `True`, update existing records that differ from these.

        Notes
        -----
        All records are written in one transaction, and existing identical
        records are left alone, so registering twice is harmless.
        """
        camera = self.camera()
        name = self.getName()
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "detector_max": max(camera.detectors) + 1,
                    "exposure_max": self.exposure_max,
                    "visit_max": self.exposure_max,
                    "visit_system": 0,
                    "class_name": get_full_type_name(self),
                },
                update=update,
            )
            for detector in camera.detectors.values():
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": name,
                        "id": detector.id,
                        "full_name": detector.name,
                        "purpose": "SCIENCE",
                    },
                    update=update,
                )
            for physical_filter in camera.filters.values():
                registry.syncDimensionData(
                    "physical_filter",
                    {
                        "instrument": name,
                        "name": physical_filter.physical_filter,
                        "band": physical_filter.band,
                    },
                    update=update,
                )
            registry.syncDimensionData(
                "visit_system", {"instrument": name, "id": 0, "name": "one-to-one"}, update=update
            )

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        # Docstring inherited.
        from lsst.utils import doImportType

        return doImportType(self.raw_formatter_name)


@cache
def _read_camera(path: Path) -> CameraDescription:
    return CameraDescription.from_yaml(path)


class Vircam(PolicyInstrument):
    """The VISTA InfraRed CAMera, as reduced by CASU.

    Detector IDs are ``ESO DET CHIP NO`` (1-16), detector names the
    extension names ``DET1.CHIP1`` ... ``DET1.CHIP16``.
    """

    policyName = "vircam"
    exposure_max = 10**14
    raw_formatter_name = "lsst.obs.vista.formatters.ImageHduFormatter"

    @classmethod
    def getName(cls) -> str:
        # Docstring inherited.
        return "VIRCAM"


class DecamCp(PolicyInstrument):
    """DECam as seen through NOIRLab Community Pipeline instcal products.

    Butler name ``DECam``; detector IDs are CCDNUM (1-62), names DETPOS
    (``S29`` ... ``N31``). Headers are translated by astro_metadata_translator's
    own DECam translator, so exposure IDs are EXPNUM.
    """

    policyName = "decam"
    exposure_max = 10**8
    raw_formatter_name = "lsst.obs.vista.formatters.ImageHduFormatter"

    @classmethod
    def getName(cls) -> str:
        # Docstring inherited.
        return "DECam"
