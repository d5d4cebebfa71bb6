"""Command line: ``python -m lsst.obs.vista.report REPO --collections COLL... --output DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

# Importing the package registers the header translators VIRCAM datasets need on read.
import lsst.obs.vista  # noqa: F401

from .build import make_report

_DESCRIPTION = """\
Write a static HTML report (DIR/index.html, PNG figures and DIR/summary.json)
of the single-frame processing (calibrateImage) in a butler repository:
a table per visit and detector (noise ratio, sources, PSF stars, PSF FWHM
ours vs header, zero point applied and fitted, astrometric offset and rms,
sky level and noise), image/mask/variance panels with the detections, the
PSF model and its residuals, the distribution of image/sqrt(variance) of
background pixels against N(0, 1) per instrument, and the multi-epoch
repeatability of PSF fluxes between visits of the same band."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lsst.obs.vista.report",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("repo", metavar="REPO", help="butler repository (path or alias)")
    parser.add_argument(
        "--collections",
        nargs="+",
        required=True,
        metavar="COLL",
        help="collections holding preliminary_visit_image and single_visit_star",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="directory to write (created if needed)"
    )
    parser.add_argument(
        "--where", default="", metavar="EXPR", help="data ID expression, e.g. \"instrument='VIRCAM'\""
    )
    parser.add_argument(
        "--max-detectors",
        type=int,
        default=16,
        metavar="N",
        help="draw image and PSF figures for the first N visit/detectors (all enter the table and "
        "histograms; default 16)",
    )
    parser.add_argument(
        "--match-radius",
        type=float,
        default=1.0,
        metavar="ARCSEC",
        help="largest separation of a source matched between visits (default 1.0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence [`str`], optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : `int`
        0 on success.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    summary = make_report(
        args.repo,
        args.collections,
        args.output,
        where=args.where,
        max_detectors=args.max_detectors,
        match_radius=args.match_radius,
    )
    print(f"{args.output}/index.html: {len(summary['rows'])} visit/detector(s) in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
