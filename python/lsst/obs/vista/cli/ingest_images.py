"""``ingestImages.py``: the name users of the Gen2 stack know, running the
same code as ``butler ingest-casu``."""

from __future__ import annotations

__all__ = ("main",)

from lsst.daf.butler.cli.cliLog import CliLog

from .commands import ingest_casu


def main() -> None:
    """Run ``ingestImages.py REPO PATH... [--transfer MODE] [--processes N]``."""
    # ``butler`` configures logging before running a subcommand; a
    # stand-alone script has to do it itself for the per-file lines to show.
    CliLog.initLog(longlog=False)
    ingest_casu.main(prog_name="ingestImages.py")
