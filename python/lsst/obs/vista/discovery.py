"""The one registration point of the package's instruments: their policy
directories.

An instrument is the directory ``policy/<dir>/`` holding ``instrument.yaml``
(what the instrument class is and which translator reads its headers),
``camera.yaml`` and ``datasets.yaml``, next to ``config/<dir>/`` (its task
config overrides) and ``pipelines/<butler name>/`` (its pipelines).  The
package's own instruments live under the package directory; more can be
added, without editing the package, from directories of the same layout
listed in the environment variable ``OBS_VISTA_INSTRUMENT_PATH``
(`os.pathsep`-separated).  Everything that needs to know the instruments
(the instrument classes, the ``butler`` ingest commands, ``ingestImages.py``,
``processCcd.py``, the header translators, isr and the simulator) asks this
module.

Reading the registration is cheap (small YAML files, no lsst-images), so the
``butler`` command-line plugin can list the ingest commands.
"""

from __future__ import annotations

__all__ = (
    "INSTRUMENT_PATH_VARIABLE",
    "IngestCommandEntry",
    "InstrumentEntry",
    "instrument_entries",
    "instrument_entry",
    "instrument_for_header",
)

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ._resources import PACKAGE_DIR

if TYPE_CHECKING:
    from astro_metadata_translator import MetadataTranslator

INSTRUMENT_PATH_VARIABLE = "OBS_VISTA_INSTRUMENT_PATH"
"""Environment variable listing further directories with ``policy/``,
``config/`` and ``pipelines/`` of instruments, searched after the package."""

_REGISTRATION_FILE = "instrument.yaml"


@dataclasses.dataclass(frozen=True)
class IngestCommandEntry:
    """The ``butler`` subcommand that ingests one instrument's products."""

    name: str
    """Command name, e.g. ``ingest-casu``."""

    short_help: str
    """One line for ``butler --help``."""

    help: str
    """Full help text of the command."""


@dataclasses.dataclass(frozen=True)
class InstrumentEntry:
    """One instrument's registration (``policy/<dir>/instrument.yaml``)."""

    name: str
    """Butler name of the instrument, e.g. ``VIRCAM``; also the name of its
    header translator and of its folder of pipelines."""

    class_name: str
    """Name of its `lsst.pipe.base.Instrument` class in
    ``lsst.obs.vista.instrument`` (and ``lsst.obs.vista``), e.g. ``Vircam``."""

    base: str
    """Fully-qualified name of the class the instrument class extends (the
    behaviour that is code, e.g. how visit IDs are compacted)."""

    doc: str
    """Docstring of the instrument class."""

    translator: str
    """Fully-qualified name of its `astro_metadata_translator.MetadataTranslator`;
    importing it registers the translator."""

    exposure_max: int
    """Exclusive upper bound of its exposure (and visit) IDs."""

    raw_formatter: str
    """Fully-qualified name of the formatter of its raw-like datasets."""

    policy_dir: Path
    """``policy/<dir>/``: ``camera.yaml``, ``datasets.yaml`` and this entry."""

    config_dir: Path
    """``config/<dir>/``: its ``<task label>.py`` config overrides."""

    pipelines_dir: Path
    """``pipelines/<name>/``: its pipelines (``ProcessCcd.yaml`` ...)."""

    ingest_command: IngestCommandEntry | None = None
    """Its ``butler`` ingest subcommand, if it has one of its own."""

    @classmethod
    def from_yaml(cls, path: Path) -> InstrumentEntry:
        """Read a registration file.

        Parameters
        ----------
        path : `pathlib.Path`
            ``<root>/policy/<dir>/instrument.yaml``.

        Returns
        -------
        entry : `InstrumentEntry`
            The registration, with its directories resolved under ``<root>``.

        Raises
        ------
        ValueError
            Raised, naming the file, for a missing or unknown key.
        """
        with open(path) as stream:
            data: dict[str, Any] = yaml.safe_load(stream)
        root = path.parent.parent.parent
        try:
            command = data.pop("ingest_command", None)
            return cls(
                ingest_command=IngestCommandEntry(**command) if command is not None else None,
                policy_dir=path.parent,
                config_dir=root / "config" / path.parent.name,
                pipelines_dir=root / "pipelines" / data["name"],
                **data,
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from err

    def translator_class(self) -> type[MetadataTranslator]:
        """Import and return the header translator (which registers it)."""
        from lsst.utils import doImportType

        return doImportType(self.translator)


def _search_roots() -> list[Path]:
    extra = os.environ.get(INSTRUMENT_PATH_VARIABLE, "")
    return [PACKAGE_DIR, *(Path(part) for part in extra.split(os.pathsep) if part)]


def instrument_entries() -> Mapping[str, InstrumentEntry]:
    """Return the registered instruments, keyed by butler name.

    Returns
    -------
    entries : `~collections.abc.Mapping` [`str`, `InstrumentEntry`]
        In the order of the search path, then of the policy directory
        names.  Read once per process and search path.

    Raises
    ------
    ValueError
        Raised if two registrations claim one butler name or class name.
    """
    return _entries(tuple(_search_roots()))


@functools.cache
def _entries(roots: tuple[Path, ...]) -> Mapping[str, InstrumentEntry]:
    entries: dict[str, InstrumentEntry] = {}
    class_names: dict[str, Path] = {}
    for root in roots:
        for path in sorted((root / "policy").glob(f"*/{_REGISTRATION_FILE}")):
            entry = InstrumentEntry.from_yaml(path)
            for key, seen in ((entry.name, entries), (entry.class_name, class_names)):
                if key in seen:
                    raise ValueError(f"{path}: {key!r} is registered twice")
            entries[entry.name] = entry
            class_names[entry.class_name] = path
    return entries


def instrument_entry(name: str) -> InstrumentEntry:
    """Return the registration of one instrument.

    Parameters
    ----------
    name : `str`
        Butler name of the instrument.

    Returns
    -------
    entry : `InstrumentEntry`
        Its registration.

    Raises
    ------
    LookupError
        Raised if no instrument has that name, listing those that do.
    """
    entries = instrument_entries()
    if name not in entries:
        raise LookupError(f"instrument {name!r} is not one of obs_vista's ({', '.join(sorted(entries))})")
    return entries[name]


def instrument_for_header(header: Mapping[str, Any], *, name: str) -> InstrumentEntry:
    """Return the registered instrument whose translator reads a header.

    Parameters
    ----------
    header : `~collections.abc.Mapping`
        A merged primary + extension header.
    name : `str`
        What to call the image in the error message.

    Returns
    -------
    entry : `InstrumentEntry`
        The first registration whose translator can translate the header.

    Raises
    ------
    LookupError
        Raised if none can.
    """
    for entry in instrument_entries().values():
        if entry.translator_class().can_translate(header):
            return entry
    raise LookupError(
        f"{name}: the header (INSTRUME {header.get('INSTRUME')!r}) is of none of the instruments "
        f"{', '.join(instrument_entries())}"
    )
