"""The ``butler`` ingest subcommands: one per registered instrument
(``ingest-casu``, ``ingest-instcal`` ...) and ``ingest-refcat``."""

from __future__ import annotations

__all__ = ("TRANSFER_HELP", "ingest_command", "ingest_commands", "ingest_refcat", "replace_option")

from collections.abc import Callable
from pathlib import Path

import click

from lsst.daf.butler.cli.opt import processes_option, repo_argument, transfer_option

from .command_style import ButlerSubcommand

TRANSFER_HELP = (
    "How the files reach the datastore.  'copy' (the default): a copy inside the repository, so the "
    "files can then be edited, moved or deleted without changing the datasets.  'move': copied, and "
    "each file deleted once its datasets are committed.  The other modes make a dataset the file "
    "itself, so that editing the file in place changes the dataset, and moving or deleting it breaks "
    "the dataset: 'direct' refers to the file where it is; 'symlink' and 'relsymlink' put an absolute "
    "or relative symbolic link to it in the repository; 'hardlink' a second name of the same file (on "
    "the repository's file system only); 'link' a hard link where possible, else a symbolic link; "
    "'auto' keeps files already inside the repository in place and links the others as 'link' does."
)
"""Help of the ``--transfer`` option of the ingest commands."""

replace_option = click.option(
    "--replace",
    is_flag=True,
    help="A file whose data IDs were ingested from a file of other content (a reprocessed product, "
    "compared by size and checksum) replaces those datasets and its exposure's dimension records; "
    "without this such a file is refused.",
)
"""The ``--replace`` flag of the ingest commands."""


def _ingest_options(command: Callable) -> Callable:
    for option in reversed(
        (
            repo_argument(required=True),
            click.argument("locations", nargs=-1, required=True, metavar="PATH..."),
            transfer_option(default="copy", help=TRANSFER_HELP),
            replace_option,
            processes_option(help="Number of processes reading headers (the registry is written by one)."),
        )
    ):
        command = option(command)
    return command


def _run(
    instruments: tuple[str, ...],
    repo: str,
    locations: tuple[str, ...],
    transfer: str,
    replace: bool,
    processes: int,
) -> None:
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from .script import ingest_products

    if not ingest_products(repo, locations, transfer, processes, instruments, replace=replace):
        raise click.exceptions.Exit(1)


def ingest_commands() -> list[click.Command]:
    """Return the ingest subcommand of every registered instrument that
    declares one (``ingest_command`` of its ``instrument.yaml``).

    Returns
    -------
    commands : `list` [`click.Command`]
        ``butler ingest-instcal`` (DECam), ``butler ingest-casu`` (VIRCAM) ...
    """
    from ..discovery import instrument_entries

    return [ingest_command(entry.name) for entry in instrument_entries().values() if entry.ingest_command]


def ingest_command(instrument: str) -> click.Command:
    """Return the ingest subcommand of one registered instrument, pinned to
    its products.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument.

    Returns
    -------
    command : `click.Command`
        The command its ``instrument.yaml`` declares (name and help).

    Raises
    ------
    LookupError
        Raised if the instrument is not registered or declares no command.
    """
    from ..discovery import instrument_entry

    description = instrument_entry(instrument).ingest_command
    if description is None:
        raise LookupError(f"instrument {instrument!r} declares no ingest command")

    def ingest(repo: str, locations: tuple[str, ...], transfer: str, replace: bool, processes: int) -> None:
        _run((instrument,), repo, locations, transfer, replace, processes)

    return click.command(
        description.name, short_help=description.short_help, help=description.help, cls=ButlerSubcommand
    )(_ingest_options(ingest))


@click.command(
    short_help="Shard Gaia-like FITS tables into the htm7 reference catalogue NAME (e.g. gaia_dr3).",
    cls=ButlerSubcommand,
)
@repo_argument(required=True)
@click.argument("name", metavar="NAME")
# Checked in the command, not by click, to say when a file was taken for NAME.
@click.argument("files", nargs=-1, metavar="FILE...", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--schema",
    type=click.Choice(["gaia", "2mass"]),
    default="gaia",
    show_default=True,
    help=(
        "Columns of the files: Gaia's gaia_source, or the 2MASS Point Source Catalog's (pts_key, ra, dec, "
        "err_maj, j_m, h_m, k_m, their *_msigcom, jdate), the photometric reference of VIRCAM and WFCAM "
        "(dataset type twomass_psc)."
    ),
)
@click.option(
    "--positions",
    metavar="ID,RA,DEC",
    help=(
        "The files are an external catalogue (FITS or Parquet) of positions to measure on the coadds "
        "(forcedPhotExternal), not Gaia-like: keep only its integer ID, ICRS ra and dec (degrees), "
        "whose columns are named ID, RA and DEC, as source_id, ra and dec."
    ),
)
def ingest_refcat(repo: str, name: str, files: tuple[str, ...], schema: str, positions: str | None) -> None:
    """Ingest Gaia-like FITS tables into REPO as reference catalogue NAME.

    NAME, required, is the dataset type of the catalogue; the pipelines
    look for gaia_dr3 unless configured otherwise, so give gaia_dr3 for
    Gaia DR3 tables.  Each FILE's first table HDU must
    have the Gaia gaia_source columns source_id, ra, dec, ra_error,
    dec_error, ref_epoch, pmra, pmdec and their errors, and
    phot_{g,bp,rp}_mean_mag with phot_{g,bp,rp}_mean_flux_over_error, in
    Gaia's units (assumed where a column has no TUNIT); parallax and the
    other Gaia quality columns are kept if present, anything else is not.

    With --schema 2mass the files are 2MASS Point Source Catalog tables
    (e.g. from IRSA's fp_psc) under the PSC's names: pts_key (kept as
    source_id), ra, dec, err_maj, j_m, h_m, k_m with j_msigcom, h_msigcom,
    k_msigcom, and jdate (the epoch of the position); err_min and *_snr are
    kept if present.  The VIRCAM and WFCAM pipelines fit their zero points
    to twomass_psc, so give twomass_psc as NAME.

    The rows are split by HTM level-7 trixel into one dataset per trixel
    (dimension htm7, storage class ArrowAstropy), found through the chained
    collection refcats/NAME.  The files are read and rewritten, so the
    repository does not refer to them afterwards.  Rows whose source_id a
    shard holds already replace the stored ones; changed shards go to a new
    run refcats/NAME/<UTC time> put first in the chain, so ingesting the
    same files again writes nothing.

    Every file is checked before anything is written: a file that is not a
    regular file or not a reference table, has a position out of range (ra
    in [0, 360), dec in [-90, 90] degrees, finite), or has no rows while no
    other file has any, is reported on one line and nothing is ingested (an
    empty file next to files with rows is only named).  All shards are
    written in one transaction.  The exit status is 1 if a file
    or the repository stopped the ingest.

    With --positions ID,RA,DEC the files (FITS or Parquet) are an external
    catalogue whose positions the coadds are measured at (DRP.yaml's
    external subset, dataset type external_catalog by default): only its
    integer ID and ICRS ra and dec in degrees are kept, stored as
    source_id, ra and dec, with the same checks, sharding and re-run rules.
    """
    if not files:
        taken = (
            f": {name!r} was read as NAME; the catalogue's name (e.g. gaia_dr3) comes before the files"
            if Path(name).suffix or Path(name).exists()
            else ""
        )
        raise click.UsageError(f"Missing argument 'FILE...'{taken}.")
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from .script import ingest_reference_catalog

    names = None
    if positions is not None and schema != "gaia":
        raise click.BadParameter("--positions takes no --schema: an external catalogue has its own.")
    if positions is not None:
        names = dict(zip(("source_id", "ra", "dec"), positions.split(","), strict=False))
        if len(names) != 3 or len(positions.split(",")) != 3 or not all(names.values()):
            raise click.BadParameter(
                f"{positions!r} is not three column names ID,RA,DEC.", param_hint="--positions"
            )
    if not ingest_reference_catalog(repo, name, files, names=names, schema=schema):
        raise click.exceptions.Exit(1)
