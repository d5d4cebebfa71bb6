"""The ``butler make-report`` subcommand: the static HTML report of the
single-frame processing (`lsst.obs.vista.report`), also run as
``python -m lsst.obs.vista.report``."""

from __future__ import annotations

__all__ = ("make_report", "report_options", "write_report")

from collections.abc import Callable, Sequence

import click

from lsst.daf.butler.cli.opt import collections_option, repo_argument, where_option

from .command_style import ButlerSubcommand, output_option
from .repository import open_repository


def report_options(command: Callable) -> Callable:
    """Add the report's arguments and options to a command."""
    for option in reversed(
        (
            repo_argument(required=True),
            collections_option(
                required=True,
                help="Collections holding preliminary_visit_image and single_visit_star, comma-separated "
                "or repeated.",
            ),
            output_option(required=True, metavar="DIR", help="Directory to write (created if needed)."),
            where_option(help="Data ID expression, e.g. \"instrument='VIRCAM'\"."),
            click.option(
                "--max-detectors",
                type=click.IntRange(min=0),
                default=16,
                show_default=True,
                metavar="N",
                help="Draw the figures of the first N visit/detectors (all enter the table, the visit maps "
                "and the histograms).",
            ),
            click.option(
                "--match-radius",
                type=click.FloatRange(min=0.0, min_open=True),
                default=1.0,
                show_default=True,
                metavar="ARCSEC",
                help="Largest separation of a source matched between visits or to the reference catalogue "
                "(or of an object from its true source).",
            ),
            click.option(
                "--truth",
                type=click.Path(exists=True, file_okay=False),
                default=None,
                metavar="DIR",
                help="The truth/ directory of simulated stacks (python -m lsst.obs.vista.sim): compare the "
                "objects with their true sources.",
            ),
        )
    ):
        command = option(command)
    return command


def write_report(
    repo: str,
    collections: Sequence[str],
    output: str,
    where: str,
    max_detectors: int,
    match_radius: float,
    truth: str | None = None,
) -> None:
    """Write the report and print where it is.

    The repository and the collections are checked first, and a query or
    dataset the repository cannot answer ends the command with one line
    (`open_repository`).
    """
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from ..report import make_report as build_report

    with open_repository(repo, collections=collections):
        summary = build_report(
            repo,
            collections,
            output,
            where=where,
            max_detectors=max_detectors,
            match_radius=match_radius,
            truth=truth,
        )
    click.echo(f"{output}/index.html: {len(summary['rows'])} visit/detector(s) in {summary['seconds']} s")


@click.command(
    "make-report",
    short_help="Write the HTML report of the single-frame processing (calibrateImage outputs).",
    cls=ButlerSubcommand,
)
@report_options
def make_report(
    repo: str,
    collections: tuple[str, ...],
    output: str,
    where: str,
    max_detectors: int,
    match_radius: float,
    truth: str | None,
) -> None:
    """Write a static HTML report of the single-frame processing in REPO.

    DIR/index.html, PNG figures and DIR/summary.json: how the report was
    made (date, version, collections, the calibrateImage config), a table per
    visit and detector (noise ratio, sources, PSF stars, PSF FWHM in arcsec
    ours vs header, zero point applied and fitted, astrometric offset and
    rms, sky level and noise, 5-sigma depth), maps of each visit's
    detectors, the distribution of image/sqrt(variance) of background pixels
    against N(0, 1) per instrument, the multi-epoch repeatability of PSF
    fluxes between visits of the same band, the coadds, their objects
    (colour–magnitude diagram, number counts; with --truth completeness,
    purity and a variable star's light curve), and per detector
    image/mask/variance panels with the detections, the PSF model and its
    residuals, residuals against the reference catalogue, PSF ellipticity
    and a size-magnitude diagram.  Progress: one log line per detector, and
    a progress bar with butler --progress.
    """
    write_report(repo, collections, output, where, max_detectors, match_radius, truth)
