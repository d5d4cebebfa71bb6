"""The ``butler ingest-casu``, ``butler ingest-instcal`` and ``butler
ingest-refcat`` subcommands."""

from __future__ import annotations

__all__ = ("ingest_casu", "ingest_instcal", "ingest_refcat")

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


@click.command(
    short_help="Shard Gaia-like FITS tables into an htm7 reference catalogue (default name gaia_dr3).",
    cls=ButlerCommand,
)
@repo_argument(required=True)
@click.argument("name")
@click.argument(
    "files", nargs=-1, required=True, metavar="FILE...", type=click.Path(exists=True, dir_okay=False)
)
def ingest_refcat(repo: str, name: str, files: tuple[str, ...]) -> None:
    """Ingest Gaia-like FITS tables into REPO as reference catalogue NAME.

    NAME is the dataset type of the catalogue; the pipelines look for
    gaia_dr3 unless configured otherwise.  Each FILE's first table HDU must
    have the Gaia gaia_source columns source_id, ra, dec, ra_error,
    dec_error, ref_epoch, pmra, pmdec and their errors, and
    phot_{g,bp,rp}_mean_mag with phot_{g,bp,rp}_mean_flux_over_error, in
    Gaia's units (assumed where a column has no TUNIT); parallax and the
    other Gaia quality columns are kept if present, anything else is not.

    The rows are split by HTM level-7 trixel into one dataset per trixel
    (dimension htm7, storage class ArrowAstropy), found through the chained
    collection refcats/NAME.  The files are read and rewritten, so the
    repository does not refer to them afterwards.  Rows whose source_id a
    shard holds already replace the stored ones; changed shards go to a new
    run refcats/NAME/<UTC time> put first in the chain, so ingesting the
    same files again writes nothing.

    Every file is checked before anything is written: a file that is not a
    reference table is reported on one line and nothing is ingested.  All
    shards are written in one transaction.  The exit status is 1 if a file
    or the repository stopped the ingest.
    """
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from .script import ingest_reference_catalog

    if not ingest_reference_catalog(repo, name, files):
        raise click.exceptions.Exit(1)
