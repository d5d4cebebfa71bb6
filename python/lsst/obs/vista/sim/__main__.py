"""Command line: ``python -m lsst.obs.vista.sim OUTDIR --stacks N [--index-step S] [--tile]
[--refcat FILE] [--twomass FILE]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ._config import SimulationConfig
from ._pawprint import SimulatedStack, write_pawprint_stack
from ._refcat import write_reference_catalog
from ._schedule import OFFSETS_PER_TILE
from ._tile import write_tile
from ._twomass import write_twomass_catalog

_DESCRIPTION = """\
Write synthetic VISTA/VIRCAM CASU pawprint stacks (v<night>_<number>_st.fit
with _st_conf.fit and _st_cat.fits), and optionally their tiles
(_st_tl.fit, _st_tl_conf.fit, _st_tl_cat.fits), into OUTDIR.  The exact
truth of each product (variance, neighbour covariances, noiseless model;
for stacks also the true sources of each detector with their true PSF FWHM
and the true zero points) goes to OUTDIR/truth/<stem>_truth.fits, out of
the way of a directory ingest.  --refcat writes a Gaia-DR3-like reference
catalogue of the simulated stars (proper motions, ref_epoch 2016.0; G holds
the band's AB magnitude, BP-RP = 0); --twomass a 2MASS-PSC-like one (J, H,
Ks through the instrument's colour term give the band's AB magnitude, for
butler ingest-refcat --schema 2mass).  Stacks are numbered from 0; six
consecutive stacks from a multiple of 6 are the offsets of one tile.  A
full-size stack (16 detectors of 2048 pixels) takes about half a minute and
2.1 GB of disk (1.7 GB of it truth); a full-size tile about 3 minutes and
6 GB of memory."""


def _detectors(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated detector numbers, not {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    defaults = SimulationConfig()
    parser = argparse.ArgumentParser(
        prog="python -m lsst.obs.vista.sim",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="directory to write into (created if needed)")
    parser.add_argument("--stacks", type=int, required=True, metavar="N", help="number of pawprint stacks")
    parser.add_argument(
        "--size",
        type=int,
        default=defaults.size,
        metavar="PIX",
        help=f"detector side in pixels; below 2048 a miniature camera (default {defaults.size})",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})"
    )
    parser.add_argument(
        "--first-index",
        type=int,
        default=0,
        metavar="I",
        help="index of the first stack; indices set times and file numbers (default 0)",
    )
    parser.add_argument(
        "--index-step",
        type=int,
        default=1,
        metavar="S",
        help="indices of the stacks go up by S, e.g. --stacks 2 --index-step 2: indices 0 and 2, the "
        "offsets of a tile half a detector apart, in one run (default 1)",
    )
    parser.add_argument(
        "--detectors",
        type=_detectors,
        default=defaults.detectors,
        metavar="LIST",
        help="comma-separated detectors to make, e.g. 1,2,5 (default all 16)",
    )
    parser.add_argument(
        "--psf-variation",
        type=float,
        default=defaults.psf_variation,
        metavar="F",
        help="fractional change of the PSF FWHM from detector centre to corner "
        f"(default {defaults.psf_variation})",
    )
    parser.add_argument(
        "--filter",
        default=defaults.filter_name,
        metavar="NAME",
        help=(
            f"filter as in ESO INS FILT1 NAME (default {defaults.filter_name}); DIT, sky level and zero "
            "point stay those of the default band's template stack"
        ),
    )
    parser.add_argument(
        "--variables",
        type=float,
        default=defaults.variable_fraction,
        metavar="F",
        help="fraction of the stars that vary sinusoidally (semi-amplitude 0.1-0.5 mag, period 1-6 h; "
        f"truth in the sources' amplitude, period and phase columns) (default {defaults.variable_fraction})",
    )
    parser.add_argument(
        "--colours",
        action="store_true",
        help="give the stars their own colours (random 2MASS J-H and H-Ks through the instrument's colour "
        "terms; Z magnitudes unchanged); without it every source has the same Vega magnitude in every band",
    )
    parser.add_argument(
        "--refcat",
        metavar="FILE",
        help="also write a Gaia-DR3-like reference catalogue of the stars, whose positions propagated "
        "to the first stack's DATE-OBS are the true ones",
    )
    parser.add_argument(
        "--twomass",
        metavar="FILE",
        help="also write a 2MASS-PSC-like reference catalogue of the stars, at their true positions, whose "
        "J, H, Ks give each star's magnitude in the band through the instrument's colour term",
    )
    parser.add_argument(
        "--tile",
        action="store_true",
        help=f"also mosaic every {OFFSETS_PER_TILE} stacks into a tile (N and the first index must be "
        f"multiples of {OFFSETS_PER_TILE})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : `~collections.abc.Sequence` [`str`], optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : `int`
        Exit status.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.stacks < 1:
        parser.error("--stacks must be at least 1")
    if args.first_index < 0:
        parser.error("--first-index must not be negative")
    if args.index_step < 1:
        parser.error("--index-step must be at least 1")
    if args.tile and (
        args.stacks % OFFSETS_PER_TILE or args.first_index % OFFSETS_PER_TILE or args.index_step > 1
    ):
        parser.error(
            f"--tile needs --stacks and --first-index to be multiples of {OFFSETS_PER_TILE}, and consecutive "
            "stacks (--index-step 1)"
        )
    try:
        config = SimulationConfig(
            size=args.size,
            seed=args.seed,
            detectors=args.detectors,
            psf_variation=args.psf_variation,
            filter_name=args.filter,
            variable_fraction=args.variables,
            star_colours=args.colours,
        )
    except ValueError as error:
        parser.error(str(error))
    offsets: list[SimulatedStack] = []
    detectors = f"{len(config.detectors)} detector{'s' if len(config.detectors) > 1 else ''}"
    indices = range(args.first_index, args.first_index + args.stacks * args.index_step, args.index_step)
    for number, index in enumerate(indices, start=1):
        start = time.perf_counter()
        stack = write_pawprint_stack(args.outdir, index, config)
        print(
            f"stack {number}/{args.stacks}: {stack.stack.name} "
            f"({detectors}, {time.perf_counter() - start:.1f} s)",
            flush=True,
        )
        if args.tile:
            offsets.append(stack)
        if len(offsets) == OFFSETS_PER_TILE:
            start = time.perf_counter()
            tile = write_tile(args.outdir, offsets, config)
            print(f"tile: {tile.tile.name} ({time.perf_counter() - start:.1f} s)", flush=True)
            offsets = []
    if args.refcat:
        table = write_reference_catalog(config, args.refcat, index=args.first_index)
        print(f"reference catalogue: {args.refcat} ({len(table)} stars)", flush=True)
    if args.twomass:
        table = write_twomass_catalog(config, args.twomass)
        print(f"2MASS-like reference catalogue: {args.twomass} ({len(table)} stars)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
