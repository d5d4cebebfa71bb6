"""The ``butler ingest-casu`` subcommand."""

from __future__ import annotations

__all__ = ("ingest_casu",)

import click
from lsst.daf.butler.cli.opt import processes_option, repo_argument, transfer_option
from lsst.daf.butler.cli.utils import ButlerCommand


@click.command(
    short_help="Ingest CASU VISTA stacks, confidence maps, catalogues and tiles.", cls=ButlerCommand
)
@repo_argument(required=True)
@click.argument("locations", nargs=-1, required=True, metavar="PATH...")
@transfer_option()
@processes_option()
def ingest_casu(repo: str, locations: tuple[str, ...], transfer: str, processes: int) -> None:
    """Ingest CASU-reduced VIRCAM products into REPO.

    PATH may be files or directories (searched recursively).  Pawprint
    stacks (*_st.fit) and tiles (*_st_tl.fit) define exposures and visits;
    their confidence maps and catalogues are paired with them through the
    CIR_CPM card and file names.  The datasets go to run VIRCAM/raw/casu,
    which the chained collection VIRCAM/defaults includes.

    Each file is ingested completely or not at all; files already ingested
    are skipped, and a file that cannot be ingested is reported on one line
    while the others go on.  The exit status is 1 if any file failed.
    """
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from .script import ingest_casu as run

    if not run(repo, locations, transfer, processes):
        raise click.exceptions.Exit(1)
