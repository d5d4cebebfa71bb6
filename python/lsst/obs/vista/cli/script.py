"""The work behind ``butler ingest-casu``, ``butler ingest-instcal``,
``butler ingest-refcat`` and ``ingestImages.py``."""

from __future__ import annotations

__all__ = ("INGEST_INSTRUMENTS", "ingest_products", "ingest_reference_catalog")

from collections.abc import Iterable, Sequence
from pathlib import Path

from lsst.utils.logging import getLogger

from ..ingest import ProductIngester, policy_for_instrument
from ..refcat import ingest_refcat
from .repository import open_repository
from .repository_config import ensure_background_map_formatter

INGEST_INSTRUMENTS = ("VIRCAM", "DECam")
"""Instruments with a dataset policy, in the order ``ingestImages.py`` tries
them."""

_LOG = getLogger("lsst.obs.vista.ingest")
_UNMATCHED = ""
"""Key of `_assign`'s result for files of no instrument."""


def ingest_products(
    repo: str,
    locations: Iterable[str],
    transfer: str,
    processes: int,
    instruments: Sequence[str],
    *,
    replace: bool = False,
) -> bool:
    """Ingest reduced products into a butler repository.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    locations : iterable [`str`]
        Files and directories (searched recursively).
    transfer : `str`
        Transfer mode (``auto``, ``direct``, ``copy``, ``symlink``,
        ``hardlink``, ``move`` ...).
    processes : `int`
        Number of processes reading headers.
    instruments : `~collections.abc.Sequence` [`str`]
        Instruments whose dataset policies apply.  With one, every file is
        that instrument's product or an error; with several, each file goes
        to the instrument whose file names it matches, directories to every
        instrument that finds products in them.
    replace : `bool`, optional
        Whether files with other content than the one their data IDs were
        ingested from replace those datasets (`ProductIngester`).

    Returns
    -------
    ok : `bool`
        `True` if every file was ingested or was already present.

    Notes
    -----
    The repository's configuration is first given what the pipelines need
    (`ensure_background_map_formatter`), so that a repository made by a
    plain ``butler create`` runs them.
    """
    ensure_background_map_formatter(repo)
    locations = list(locations)
    assignments = {instruments[0]: locations} if len(instruments) == 1 else _assign(locations, instruments)
    ok = not assignments.pop(_UNMATCHED, [])
    with open_repository(repo, writeable=True) as butler:
        for instrument, paths in assignments.items():
            report = ProductIngester(
                butler, instrument=instrument, transfer=transfer, replace=replace, processes=processes
            ).run(paths)
            ok &= report.ok
    return ok


def ingest_reference_catalog(repo: str, name: str, files: Iterable[str]) -> bool:
    """Shard reference catalogue files into a butler repository.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    name : `str`
        Dataset type name of the catalogue.
    files : iterable [`str`]
        Gaia-like FITS tables.

    Returns
    -------
    ok : `bool`
        `True` if the rows were ingested or were all present already.
    """
    with open_repository(repo, writeable=True) as butler:
        return ingest_refcat(butler, name, files).ok


def _assign(locations: list[str], instruments: Sequence[str]) -> dict[str, list[str]]:
    """Split the given paths by the instrument whose products they hold;
    files that match no instrument are reported and left out."""
    policies = {instrument: policy_for_instrument(instrument) for instrument in instruments}
    assignments: dict[str, list[str]] = {}
    for location in locations:
        path = Path(location)
        if path.is_dir():
            for instrument, policy in policies.items():
                if any(policy.classify(f.name) for f in path.rglob("*") if f.is_file()):
                    assignments.setdefault(instrument, []).append(location)
            continue
        owner = next((i for i, policy in policies.items() if policy.classify(path.name)), None)
        if owner is None and path.exists():
            _LOG.error("%s: file name matches no product of %s", path.absolute(), " or ".join(instruments))
            assignments.setdefault(_UNMATCHED, []).append(location)
        else:
            # A missing path is reported by the first instrument's ingest.
            assignments.setdefault(owner or instruments[0], []).append(location)
    return assignments
