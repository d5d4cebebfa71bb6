"""Butler instruments whose camera knowledge lives in ``policy/``.

The instrument classes (`Vircam`, `DecamCp`, `Wfcam` ...) are not written
here: each is made, on first use, from its registration
``policy/<dir>/instrument.yaml`` (`lsst.obs.vista.discovery`) as a subclass
of the base that registration names, and is found as an attribute of this
module and of ``lsst.obs.vista`` by the name it gives.
"""

from __future__ import annotations

__all__ = ("CasuInstrument", "PolicyInstrument", "header_instrument", "policy_instrument")

import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from lsst.pipe.base import Instrument
from lsst.utils import doImportType
from lsst.utils.introspection import get_full_type_name

from ._resources import CONFIG_DIR
from .camera import CameraDescription, read_camera
from .discovery import InstrumentEntry, instrument_entries, instrument_entry, instrument_for_header

if TYPE_CHECKING:
    from collections.abc import Mapping

    from astro_metadata_translator import MetadataTranslator

    from lsst.daf.butler import DataId, Formatter, FormatterV2, Registry


class PolicyInstrument(Instrument):
    """An instrument described by its registration ``policy/<dir>/``.

    The concrete classes are made by `policy_instrument` from an
    `~lsst.obs.vista.discovery.InstrumentEntry`, which gives the name, the
    ID limits, the raw formatter, the header translator and the directories;
    the detectors and filters they register come from the camera
    description ``camera.yaml``.
    """

    entry: ClassVar[InstrumentEntry]
    """The registration this class was made from."""

    @classmethod
    def getName(cls) -> str:
        # Docstring inherited.
        return cls.entry.name

    @classmethod
    def camera(cls) -> CameraDescription:
        """Return the camera description (read once per process)."""
        return read_camera(cls.entry.policy_dir / "camera.yaml")

    @classmethod
    def translator_class(cls) -> type[MetadataTranslator]:
        """Return the translator of the instrument's headers."""
        return cls.entry.translator_class()

    @property
    def configPaths(self) -> list[str]:  # type: ignore[override]
        """Directories with ``<taskDefaultName>.py`` override files: the
        package-wide ``config/`` and then the instrument's ``config/<dir>/``."""
        return [str(path) for path in (CONFIG_DIR, self.entry.config_dir) if path.is_dir()]

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
                    "exposure_max": self.entry.exposure_max,
                    "visit_max": self.entry.exposure_max,
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
        return doImportType(self.entry.raw_formatter)


class CasuInstrument(PolicyInstrument):
    """An instrument reduced by CASU, whose visit IDs are ``YYYYMMDD``
    followed by the second of the day and a product digit."""

    _VISIT_EPOCH = datetime.date(2000, 1, 1)
    """Day zero of compact visit IDs, before VISTA's first light (2009)."""

    _VISIT_DAY_FACTOR = 1_000_000
    """Visit IDs are ``YYYYMMDD`` times this plus the second of the day and
    product digit (`lsst.obs.vista.translators.CasuTranslator`)."""

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


@cache
def policy_instrument(name: str) -> type[PolicyInstrument]:
    """Return the instrument class of a butler instrument name.

    Parameters
    ----------
    name : `str`
        Butler name of the instrument (``VIRCAM``, ``DECam``, ``WFCAM`` ...).

    Returns
    -------
    instrument : `type` [`PolicyInstrument`]
        Its class, made once per process from its registration: a subclass
        of the registration's base class, named by it, found as an
        attribute of this module (so that butler registries, pickles and
        pipelines can name it).  Its header translator is registered.

    Raises
    ------
    LookupError
        Raised if no instrument of this package has that name.
    """
    entry = instrument_entry(name)
    entry.translator_class()
    base = doImportType(entry.base)
    return type(
        entry.class_name,
        (base,),
        {"__module__": __name__, "__qualname__": entry.class_name, "__doc__": entry.doc, "entry": entry},
    )


def header_instrument(header: Mapping[str, Any], *, name: str) -> type[PolicyInstrument]:
    """Return the instrument class of an image from its header.

    Parameters
    ----------
    header : `~collections.abc.Mapping`
        Merged primary + extension header.
    name : `str`
        What to call the image in the error message.

    Returns
    -------
    instrument : `type` [`PolicyInstrument`]
        The registered instrument whose translator reads the header.

    Raises
    ------
    LookupError
        Raised if no registered instrument's translator can.
    """
    return policy_instrument(instrument_for_header(header, name=name).name)


def __getattr__(name: str) -> Any:
    for entry in instrument_entries().values():
        if entry.class_name == name:
            return policy_instrument(entry.name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
