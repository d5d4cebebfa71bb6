"""The work behind ``butler ingest-casu`` and ``ingestImages.py``."""

from __future__ import annotations

__all__ = ("ingest_casu",)

from collections.abc import Iterable

from lsst.daf.butler import Butler

from ..ingest import CasuIngester


def ingest_casu(repo: str, locations: Iterable[str], transfer: str, processes: int) -> bool:
    """Ingest CASU products into a butler repository.

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

    Returns
    -------
    ok : `bool`
        `True` if every file was ingested or was already present.
    """
    with Butler.from_config(repo, writeable=True) as butler:
        report = CasuIngester(butler, transfer=transfer, processes=processes).run(locations)
    return report.ok
