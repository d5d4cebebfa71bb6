"""``ingestImages.py``: the name users of the Gen2 stack know, running the
same code as ``butler ingest-casu`` and ``butler ingest-instcal``."""

from __future__ import annotations

__all__ = ("ingest_images", "main")

import click

from lsst.daf.butler.cli.opt import processes_option, repo_argument, transfer_option

from .command_style import ScriptCommand, script_log_options
from .commands import TRANSFER_HELP, replace_option
from .script import ingest_instruments


@click.command(cls=ScriptCommand, context_settings={"help_option_names": ["-h", "--help"]})
@repo_argument(required=True)
@click.argument("locations", nargs=-1, required=True, metavar="PATH...")
@transfer_option(default="copy", help=TRANSFER_HELP)
@replace_option
@processes_option(help="Number of processes reading headers.")
@click.option(
    "--instrument",
    "instruments",
    type=click.Choice(ingest_instruments()),
    multiple=True,
    help="Only this instrument's products (repeatable); by default each file goes to the instrument "
    "whose file names it matches.",
)
@script_log_options
def ingest_images(
    repo: str,
    locations: tuple[str, ...],
    transfer: str,
    replace: bool,
    processes: int,
    instruments: tuple[str, ...],
) -> None:
    """Ingest reduced products into REPO: those of every registered
    instrument, e.g. CASU VIRCAM stacks, confidence maps, catalogues and
    tiles (as 'butler ingest-casu' does) and DECam CP instcal trios (as
    'butler ingest-instcal' does).

    PATH may be files or directories (searched recursively, following
    symbolic links; a FIFO, socket or device is named and skipped without
    being opened, as is a link loop).  Each file is
    ingested completely or not at all; files already ingested with the same
    content are skipped, and a file that cannot be ingested is reported on
    one line while the others go on.  The exit status is 1 if any file
    failed.
    """
    from .script import ingest_products

    chosen = instruments or ingest_instruments()
    if not ingest_products(repo, locations, transfer, processes, chosen, replace=replace):
        raise click.exceptions.Exit(1)


def main() -> None:
    """Run ``ingestImages.py``."""
    ingest_images.main(prog_name="ingestImages.py")
