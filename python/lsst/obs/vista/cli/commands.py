"""The ``butler ingest-casu`` and ``butler ingest-instcal`` subcommands."""

from __future__ import annotations

__all__ = ("ingest_casu", "ingest_instcal")

from collections.abc import Callable

import click

from lsst.daf.butler.cli.opt import processes_option, repo_argument, transfer_option
from lsst.daf.butler.cli.utils import ButlerCommand


def _ingest_options(command: Callable) -> Callable:
    for option in reversed(
        (
            repo_argument(required=True),
            click.argument("locations", nargs=-1, required=True, metavar="PATH..."),
            transfer_option(
                help="How the files reach the datastore: 'direct' leaves them where they are; 'auto' "
                "(the default) keeps files already inside the repository in place and copies the others."
            ),
            processes_option(help="Number of processes reading headers (the registry is written by one)."),
        )
    ):
        command = option(command)
    return command


def _run(
    instruments: tuple[str, ...], repo: str, locations: tuple[str, ...], transfer: str, processes: int
) -> None:
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from .script import ingest_products

    if not ingest_products(repo, locations, transfer, processes, instruments):
        raise click.exceptions.Exit(1)


@click.command(
    short_help="Ingest CASU VISTA stacks, confidence maps, catalogues and tiles.", cls=ButlerCommand
)
@_ingest_options
def ingest_casu(repo: str, locations: tuple[str, ...], transfer: str, processes: int) -> None:
    """Ingest CASU-reduced VIRCAM products into REPO.

    PATH may be files or directories (searched recursively).  Pawprint
    stacks (*_st.fit) and tiles (*_st_tl.fit) define exposures and visits;
    their confidence maps and catalogues are paired with them through the
    CIR_CPM card and file names.  The datasets go to run VIRCAM/raw/casu,
    which the chained collection VIRCAM/defaults includes, as dataset types
    casu_stack, casu_confidence and casu_catalog (per exposure and detector)
    and casu_tile, casu_tile_confidence and casu_tile_catalog (per exposure).

    Each file is ingested completely or not at all; files already ingested
    are skipped, and a file that cannot be ingested is reported on one line
    while the others go on.  The exit status is 1 if any file failed.
    """
    _run(("VIRCAM",), repo, locations, transfer, processes)


@click.command(
    short_help="Ingest DECam Community Pipeline instcal trios (ooi image, oow weight, ood mask).",
    cls=ButlerCommand,
)
@_ingest_options
def ingest_instcal(repo: str, locations: tuple[str, ...], transfer: str, processes: int) -> None:
    """Ingest NOIRLab DECam Community Pipeline instcal products into REPO.

    PATH may be files or directories (searched recursively), uncompressed or
    fpack-compressed (.fits.fz), full multi-CCD files or single-CCD cutouts.
    Images (*_ooi_*) define exposures and visits (EXPNUM); their weight
    (*_oow_*) and data-quality mask (*_ood_*) files are paired by name and
    checked to be the same exposure (EXPNUM, DTACQNAM) and CCDs.  A file's
    role comes from its name: CP writes the image's primary header, with
    PRODTYPE = 'image', into all three.  The datasets go to run
    DECam/raw/instcal, which the chained collection DECam/defaults includes,
    as dataset types cp_image, cp_weight and cp_mask (per exposure and CCD).

    Each file is ingested completely or not at all; files already ingested
    are skipped, and a file that cannot be ingested is reported on one line
    while the others go on.  The exit status is 1 if any file failed.
    """
    _run(("DECam",), repo, locations, transfer, processes)
