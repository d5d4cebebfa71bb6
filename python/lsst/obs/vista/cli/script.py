"""The work behind ``butler ingest-casu``, ``butler ingest-instcal``,
``butler ingest-refcat`` and ``ingestImages.py``."""

from __future__ import annotations

__all__ = ("ingest_instruments", "ingest_products", "ingest_reference_catalog")

from collections.abc import Iterable, Mapping, Sequence

from lsst.utils.logging import getLogger

from ..discovery import instrument_entries
from ..ingest import FoundFiles, IngestPolicy, ProductIngester, find_files, policy_for_instrument
from ..refcat import EXTERNAL_COLUMNS, REFERENCE_SCHEMAS, ingest_refcat
from .repository import open_repository
from .repository_config import ensure_background_map_formatter


def ingest_instruments() -> tuple[str, ...]:
    """Return the registered instruments with a dataset policy, in the order
    ``ingestImages.py`` tries them (`lsst.obs.vista.discovery`)."""
    entries = instrument_entries().values()
    return tuple(entry.name for entry in entries if (entry.policy_dir / "datasets.yaml").is_file())


_LOG = getLogger("lsst.obs.vista.ingest")
_UNMATCHED = ""
"""Key of `_assign`'s result for the given paths of no instrument."""


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
        Files and directories (searched recursively, following symbolic
        links; only regular files are read).
    transfer : `str`
        Transfer mode (``auto``, ``direct``, ``copy``, ``symlink``,
        ``hardlink``, ``move`` ...).
    processes : `int`
        Number of processes reading headers.
    instruments : `~collections.abc.Sequence` [`str`]
        Instruments whose dataset policies apply.  With one, every file is
        that instrument's product or an error; with several, each file goes
        to the instrument whose file names it matches.
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
    found = find_files(locations)
    assignments = {instruments[0]: found} if len(instruments) == 1 else _assign(found, instruments)
    ok = not assignments.pop(_UNMATCHED, None)
    with open_repository(repo, writeable=True) as butler:
        for instrument, files in assignments.items():
            report = ProductIngester(
                butler, instrument=instrument, transfer=transfer, replace=replace, processes=processes
            ).run(files)
            ok &= report.ok
    return ok


def ingest_reference_catalog(
    repo: str,
    name: str,
    files: Iterable[str],
    *,
    names: Mapping[str, str] | None = None,
    schema: str = "gaia",
) -> bool:
    """Shard reference catalogue files into a butler repository.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    name : `str`
        Dataset type name of the catalogue.
    files : iterable [`str`]
        Gaia-like FITS tables, or external catalogues if ``names`` is given.
    names : `~collections.abc.Mapping` [`str`, `str`], optional
        An external catalogue's columns for ``source_id``, ``ra`` and
        ``dec``: only those are kept (`~lsst.obs.vista.refcat.EXTERNAL_COLUMNS`).
    schema : `str`, optional
        Columns of a reference catalogue's files, a key of
        `~lsst.obs.vista.refcat.REFERENCE_SCHEMAS` (``gaia`` or ``2mass``).

    Returns
    -------
    ok : `bool`
        `True` if the rows were ingested or were all present already.
    """
    with open_repository(repo, writeable=True) as butler:
        if names is None:
            columns, schema_names = REFERENCE_SCHEMAS[schema]
            return ingest_refcat(butler, name, files, columns=columns, names=schema_names).ok
        return ingest_refcat(butler, name, files, columns=EXTERNAL_COLUMNS, names=names).ok


def _owner(filename: str, policies: Mapping[str, IngestPolicy]) -> str | None:
    """Return the instrument whose products' file names ``filename`` matches
    with the most literal characters (WFCAM's ``w*_st.fit`` before
    VIRCAM's ``*_st.fit``), the first such instrument on a tie, or `None`."""
    best, best_literal = None, -1
    for instrument, policy in policies.items():
        match = policy.classify(filename)
        if match is None:
            continue
        literal = len(filename) - sum(len(part) for part in match[1])
        if literal > best_literal:
            best, best_literal = instrument, literal
    return best


def _assign(found: FoundFiles, instruments: Sequence[str]) -> dict[str, FoundFiles]:
    """Split the files found by the instrument whose products they are.

    Each file goes to the instrument whose file-name pattern it matches most
    specifically (`_owner`).
    What belongs to no instrument goes to the first one that has files (or
    the first one), whose ingest reports it: the given paths that are not
    there or not files, the entries passed over, and the files of no
    instrument found in directories (counted as ignored).  A file given
    explicitly that matches no instrument, and a given directory without
    products of any, are reported here and make the `_UNMATCHED` entry of
    the result.
    """
    policies = {instrument: policy_for_instrument(instrument) for instrument in instruments}
    assignments: dict[str, FoundFiles] = {}
    unowned = []
    unmatched = []
    for file in found.files:
        owner = _owner(file.path.name, policies)
        if owner is None:
            if file.explicit:
                _LOG.error("%s: file name matches no product of %s", file.path, " or ".join(instruments))
                unmatched.append(file.path)
            else:
                unowned.append(file)
            continue
        part = assignments.setdefault(owner, FoundFiles())
        part.files.append(file)
        if file.root not in part.given:
            part.given.append(file.root)
    with_products = {root for part in assignments.values() for root in part.given}
    for root in found.given:
        if root not in with_products and root not in found.rejected and root not in unmatched:
            _LOG.error("%s: no %s product files (searched recursively)", root, " or ".join(instruments))
            unmatched.append(root)
    if unowned or found.rejected or found.skipped:
        reporter = assignments.setdefault(
            next((i for i in instruments if i in assignments), instruments[0]), FoundFiles()
        )
        reporter.files.extend(unowned)
        reporter.rejected.update(found.rejected)
        reporter.skipped.update(found.skipped)
    # Ingested in the instruments' order, whatever the walk met first.
    assignments = {
        instrument: assignments[instrument] for instrument in instruments if instrument in assignments
    }
    if unmatched:
        assignments[_UNMATCHED] = FoundFiles(given=unmatched)
    return assignments
