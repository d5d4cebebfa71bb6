"""Command line: ``python -m lsst.obs.vista.report REPO --collections COLL... -o DIR``,
the stand-alone form of ``butler make-report``."""

from __future__ import annotations

from collections.abc import Sequence

import click

# Importing the package registers the header translators VIRCAM datasets need on read.
import lsst.obs.vista  # noqa: F401

from ..cli.command_style import ScriptCommand, script_log_options
from ..cli.make_report import make_report, report_options, write_report


@click.command(
    cls=ScriptCommand, help=make_report.help, context_settings={"help_option_names": ["-h", "--help"]}
)
@report_options
@script_log_options
def report(
    repo: str,
    collections: tuple[str, ...],
    output: str,
    where: str,
    max_detectors: int,
    match_radius: float,
    truth: str | None,
) -> None:
    write_report(repo, collections, output, where, max_detectors, match_radius, truth)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exits with its status.

    Parameters
    ----------
    argv : sequence [`str`], optional
        Arguments (default: ``sys.argv[1:]``).
    """
    report.main(args=list(argv) if argv is not None else None, prog_name="python -m lsst.obs.vista.report")


if __name__ == "__main__":
    main()
