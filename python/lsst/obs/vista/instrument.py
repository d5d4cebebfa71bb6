"""Butler instruments whose camera knowledge lives in ``policy/``."""

from __future__ import annotations

__all__ = ("DecamCp", "PolicyInstrument", "Vircam", "policy_instrument")

import datetime
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

    @classmethod
    def compact_visit(cls, visit: int) -> int:
        """Return the compact form of a visit ID that source IDs pack
        (`lsst.obs.vista.source_id`): the visit ID itself unless a subclass
        says otherwise.

        Parameters
        ----------
        visit : `int`
            Visit ID.

        Returns
        -------
        key : `int`
            A non-negative integer, one per visit, that `expand_visit` undoes.
        """
        return visit

    @classmethod
    def expand_visit(cls, key: int) -> int:
        """Return the visit ID whose `compact_visit` is ``key``.

        Parameters
        ----------
        key : `int`
            Compact visit ID.

        Returns
        -------
        visit : `int`
            Visit ID.
        """
        return key

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        # Docstring inherited.
        from lsst.utils import doImportType

        return doImportType(self.raw_formatter_name)


@cache
def _read_camera(path: Path) -> CameraDescription:
    return CameraDescription.from_yaml(path)


def policy_instrument(name: str) -> type[PolicyInstrument]:
    """Return the instrument class of a butler instrument name.

    Parameters
    ----------
    name : `str`
        Butler name of the instrument (``VIRCAM``, ``DECam``).

    Returns
    -------
    instrument : `type` [`PolicyInstrument`]
        Its class.

    Raises
    ------
    LookupError
        Raised if no instrument of this package has that name.
    """
    pending = list(PolicyInstrument.__subclasses__())
    known = []
    while pending:
        candidate = pending.pop()
        pending.extend(candidate.__subclasses__())
        if candidate.getName() == name:
            return candidate
        known.append(candidate.getName())
    raise LookupError(f"instrument {name!r} is not one of obs_vista's ({', '.join(sorted(known))})")


class Vircam(PolicyInstrument):
    """The VISTA InfraRed CAMera, as reduced by CASU.

    Detector IDs are ``ESO DET CHIP NO`` (1-16), detector names the
    extension names ``DET1.CHIP1`` ... ``DET1.CHIP16``.
    """

    policyName = "vircam"
    exposure_max = 10**14
    raw_formatter_name = "lsst.obs.vista.formatters.ImageHduFormatter"

    _VISIT_EPOCH = datetime.date(2000, 1, 1)
    """Day zero of compact visit IDs, before VISTA's first light (2009)."""

    _VISIT_DAY_FACTOR = 1_000_000
    """Visit IDs are ``YYYYMMDD`` times this plus the second of the day and
    product digit (`lsst.obs.vista.translators.VircamTranslator`)."""

    @classmethod
    def compact_visit(cls, visit: int) -> int:
        """Return the visit ID with its date as days since 2000-01-01, so
        that source IDs can pack it: a century of visits spans 3.7e10
        instead of 1e14.

        Parameters
        ----------
        visit : `int`
            Visit ID (``YYYYMMDD`` followed by six digits).

        Returns
        -------
        key : `int`
            Days since 2000-01-01 followed by the same six digits.
        """
        day, rest = divmod(visit, cls._VISIT_DAY_FACTOR)
        year, month_day = divmod(day, 10000)
        month, day_of_month = divmod(month_day, 100)
        days = (datetime.date(year, month, day_of_month) - cls._VISIT_EPOCH).days
        return days * cls._VISIT_DAY_FACTOR + rest

    @classmethod
    def expand_visit(cls, key: int) -> int:
        # Docstring inherited.
        days, rest = divmod(key, cls._VISIT_DAY_FACTOR)
        date = cls._VISIT_EPOCH + datetime.timedelta(days=days)
        return (date.year * 10000 + date.month * 100 + date.day) * cls._VISIT_DAY_FACTOR + rest

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
