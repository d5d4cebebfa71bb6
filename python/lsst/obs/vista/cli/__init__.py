"""Command-line interface: ``butler`` subcommands and ``bin/`` scripts."""

__all__ = ("get_cli_subcommands",)

import click

from .commands import ingest_commands, ingest_refcat
from .export_legacy import export_legacy
from .make_report import make_report
from .register_skymap import register_skymap
from .summarize import summarize_isr


def get_cli_subcommands() -> list[click.Command]:
    """Return the ``butler`` subcommands this package provides.

    Registered through the ``butler.cli`` entry point, so ``butler --help``
    lists them without any environment variable.  The ingest commands are
    those the registered instruments declare (`lsst.obs.vista.discovery`).
    """
    return [
        *ingest_commands(),
        ingest_refcat,
        export_legacy,
        summarize_isr,
        register_skymap,
        make_report,
    ]
