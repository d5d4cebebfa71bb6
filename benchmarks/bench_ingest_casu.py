#!/usr/bin/env python
"""Benchmark ``butler ingest-casu`` against a bare ``butler ingest-files``.

Writes N full-size synthetic VIRCAM pawprint stacks (16 detectors) with their
confidence maps and catalogues, then, in the same run and on the same files:

1. ``butler ingest-casu`` of the N stacks, confidence maps and catalogues
   into a new repository (headers read and translated, exposures and visits
   with regions defined, 3 x 16 x N datasets);
2. the practice it replaces, for the confidence maps alone: one
   ``butler ingest-files`` call with a table built beforehand (exposure
   records already present, 16 x N datasets);
3. ``butler ingest-casu`` of 4N stacks, for linearity;

and prints throughputs, the ratio of 1 to 2 (target <= 2), of 3 to 1
(target <= 4.4) and the peak memory of 1 and 3 (target: flat).

The ingest reads headers only, so the pixel data of the files are left as
holes (sparse files: the header blocks are written, the data are skipped
over), which keeps a full-size stack (about 290 MB) at a few hundred KB on
disk.  The headers are the simulator's (`lsst.obs.vista.sim.stack_headers`),
the catalogue headers the real CASU table header with one extension per
detector.

Usage: bench_ingest_casu.py [--stacks N] [--scale S] [--processes P] [--keep]
At the defaults (100 and 400 stacks) it takes about three minutes, most of
it making the headers of 400 stacks; ``--stacks 25`` takes under a minute.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from astro_metadata_translator import ObservationInfo
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.wcs import FITSFixedWarning
from lsst.daf.butler import Butler

from lsst.obs.vista.casu_headers import read_header_dump
from lsst.obs.vista.sim import SimulationConfig, stack_headers
from lsst.obs.vista.translators import VircamTranslator
from results import Row, record

BIN = Path(sys.executable).parent
OUTPUT = Path(__file__).resolve().parent / "output"
_BLOCK = 2880
_CATALOG_ROWS = 3000
"""Rows per detector table, typical of a VIDEO pawprint catalogue."""


@dataclass
class Run:
    """The best of a few runs of one command."""

    wall: float
    """Wall-clock seconds, process start-up included."""

    cpu: float
    """User plus system CPU seconds (less sensitive than ``wall`` to other
    work on the machine)."""

    peak_rss_mb: float
    """Peak resident memory of the command."""

    ingest: float
    """Seconds ingest-casu reports for its own work (start-up excluded);
    zero for other commands."""

    @staticmethod
    def best(runs: list[Run]) -> Run:
        """Keep the minimum of each figure: the run least disturbed."""
        fields = ("wall", "cpu", "peak_rss_mb", "ingest")
        return Run(*(min(getattr(r, field) for r in runs) for field in fields))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=int, default=100, help="N: stacks of the main comparison")
    parser.add_argument("--scale", type=float, default=1.0, help="detector side as a fraction of 2048")
    parser.add_argument("--processes", type=int, default=1, help="ingest-casu --processes")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each command (the best is kept)")
    parser.add_argument("--keep", action="store_true", help="keep the files and repositories")
    args = parser.parse_args()
    config = SimulationConfig(size=max(64, round(2048 * args.scale)), seed=1)
    n_small, n_large = args.stacks, 4 * args.stacks
    OUTPUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_casu_", dir=OUTPUT))
    try:
        detectors = f"{len(config.detectors)} {config.size}-pixel detectors"
        print(f"Writing {n_large} stacks of {detectors} in {work} ...")
        start = time.perf_counter()
        large, small = work / "large", work / "small"
        exposures = write_products(large, n_large, config)
        # The N-stack set is the first N of the 4N set, hard-linked.
        small.mkdir()
        for stem in list(exposures)[:n_small]:
            for suffix in (".fit", "_conf.fit", "_cat.fits"):
                os.link(large / f"{stem}{suffix}", small / f"{stem}{suffix}")
        # Written pages reach the disk now, not while a command is timed.
        os.sync()
        print(f"  done in {time.perf_counter() - start:.0f} s")

        table = work / "confidence.ecsv"
        write_table(table, small, {stem: exposures[stem] for stem in list(exposures)[:n_small]}, config)
        casu_runs, baseline_runs, large_runs = [], [], []
        for attempt in range(args.repeat):
            # Each ingest-casu goes to a new repository (a second run would
            # skip everything); ingest-files then adds the same confidence
            # maps to it, in a run of their own, its exposures being there.
            repo = make_repo(work / f"repo_small_{attempt}")
            casu_runs.append(run(["ingest-casu", repo, small, "-t", "direct", "-j", args.processes]))
            baseline_runs.append(
                run(["ingest-files", "-t", "direct", repo, "casu_confidence", "baseline/ingest_files", table])
            )
            repo = make_repo(work / f"repo_large_{attempt}")
            large_runs.append(run(["ingest-casu", repo, large, "-t", "direct", "-j", args.processes]))
        casu, baseline, casu_large = map(Run.best, (casu_runs, baseline_runs, large_runs))
    finally:
        if not args.keep:
            shutil.rmtree(work)

    n_det = len(config.detectors)
    print(f"\nBest of {args.repeat} runs each (wall clock; CPU time in brackets):")
    print(
        f"ingest-casu  {n_small:4d} stacks:    {3 * n_small:5d} files {3 * n_det * n_small:6d} datasets "
        f"{casu.wall:6.2f} s [{casu.cpu:6.2f} s]  {3 * n_small / casu.wall:6.1f} files/s "
        f"{3 * n_det * n_small / casu.wall:7.1f} datasets/s  peak RSS {casu.peak_rss_mb:.0f} MB"
    )
    print(
        f"ingest-files {n_small:4d} conf maps: {n_small:5d} files {n_det * n_small:6d} datasets "
        f"{baseline.wall:6.2f} s [{baseline.cpu:6.2f} s]  {n_small / baseline.wall:6.1f} files/s "
        f"{n_det * n_small / baseline.wall:7.1f} datasets/s"
    )
    print(
        f"ingest-casu  {n_large:4d} stacks:    {3 * n_large:5d} files {3 * n_det * n_large:6d} datasets "
        f"{casu_large.wall:6.2f} s [{casu_large.cpu:6.2f} s]  {3 * n_large / casu_large.wall:6.1f} files/s "
        f"{3 * n_det * n_large / casu_large.wall:7.1f} datasets/s  peak RSS {casu_large.peak_rss_mb:.0f} MB"
    )
    print()
    results = [
        ("ingest-casu / ingest-files, wall clock", casu.wall / baseline.wall, 2.0),
        (f"{n_large} / {n_small} stacks, wall clock", casu_large.wall / casu.wall, 4.4),
        (f"peak RSS, {n_large} / {n_small} stacks", casu_large.peak_rss_mb / casu.peak_rss_mb, 1.1),
    ]
    for label, value, target in results:
        print(f"{label:58s} {value:5.2f}  (target <= {target}) {'ok' if value <= target else 'MISSED'}")
    # The same ratios without what the wall clock adds: other processes'
    # load (CPU time) and the start-up shared by every butler command.
    print(f"{'ingest-casu / ingest-files, CPU time':58s} {casu.cpu / baseline.cpu:5.2f}")
    growth = casu_large.ingest / casu.ingest
    print(f"{f'{n_large} / {n_small} stacks, ingest only (start-up excluded)':58s} {growth:5.2f}")
    record(
        "bench_ingest_casu",
        [
            Row(f"ingest-casu / ingest-files, {n_small} stacks", casu.wall, baseline.wall, "s", "<= 2.0",
                casu.peak_rss_mb),
            Row(f"ingest-casu {n_large} / {n_small} stacks", casu_large.wall, casu.wall, "s", "<= 4.4",
                casu_large.peak_rss_mb),
            Row(f"ingest-casu peak RSS, {n_large} / {n_small} stacks", casu_large.peak_rss_mb,
                casu.peak_rss_mb, "MiB", "<= 1.1"),
        ],
    )  # fmt: skip
    return 0 if all(value <= target for _, value, target in results) else 1


def write_products(outdir: Path, n_stacks: int, config: SimulationConfig) -> dict[str, int]:
    """Write stacks, confidence maps and catalogues with sparse pixel data;
    return the exposure ID of each stack's stem, in index order."""
    outdir.mkdir(parents=True)
    # The real cards' quirks (old-style WCS cards, over-long comments) make
    # astropy warn on every header; they are what CASU writes.
    warnings.simplefilter("ignore", FITSFixedWarning)
    warnings.simplefilter("ignore", VerifyWarning)
    # The catalogue headers do not change from stack to stack (ingest takes
    # a catalogue's exposure from its stack), so they are rendered once.
    catalogs = []
    for detector in config.detectors:
        header = read_header_dump("2_cell111")
        header["NAXIS2"] = _CATALOG_ROWS
        header["EXTNAME"] = f"DET1.CHIP{detector}"
        catalogs.append(render(header))
    exposures: dict[str, int] = {}
    for index in range(n_stacks):
        primary, extensions = stack_headers(index, config)
        primary = fits.PrimaryHDU(header=primary).header
        stem = extensions[config.detectors[0]]["CIR_CPM"].split("_conf.fit")[0]
        merged = primary.copy()
        merged.update(extensions[config.detectors[0]])
        exposures[stem] = ObservationInfo(
            merged, filename=f"{stem}.fit", translator_class=VircamTranslator
        ).exposure_id
        primary_hdu = render(primary)
        write_sparse(outdir / f"{stem}.fit", [primary_hdu, *map(render, extensions.values())])
        confidence = [render(confidence_header(header)) for header in extensions.values()]
        write_sparse(outdir / f"{stem}_conf.fit", [primary_hdu, *confidence])
        write_sparse(outdir / f"{stem}_cat.fits", [primary_hdu, *catalogs])
    return exposures


def confidence_header(image: fits.Header) -> fits.Header:
    """CASU confidence maps: the image's cards, 16-bit integers, no scaling."""
    header = image.copy()
    for key in ("BSCALE", "BZERO", "CIR_CPM"):
        header.remove(key, ignore_missing=True)
    header["BITPIX"] = 16
    return header


def render(header: fits.Header) -> tuple[bytes, int]:
    """Return an HDU's header block and the padded size of its data."""
    size = abs(header["BITPIX"]) // 8 * header["NAXIS1"] * header["NAXIS2"] if header.get("NAXIS", 0) else 0
    return header.tostring().encode("ascii"), -(-size // _BLOCK) * _BLOCK


def write_sparse(path: Path, hdus: list[tuple[bytes, int]]) -> None:
    """Write HDU headers and skip over their data, leaving holes."""
    with open(path, "wb") as stream:
        for header, data_size in hdus:
            stream.write(header)
            stream.seek(data_size, os.SEEK_CUR)
        stream.truncate(stream.tell())


def write_table(path: Path, directory: Path, exposures: dict[str, int], config: SimulationConfig) -> None:
    """The table ``butler ingest-files`` reads: one row per detector of each
    confidence map."""
    rows = [
        (str(directory / f"{stem}_conf.fit"), "VIRCAM", exposure, detector)
        for stem, exposure in exposures.items()
        for detector in config.detectors
    ]
    Table(rows=rows, names=("file", "instrument", "exposure", "detector")).write(path, overwrite=True)


def make_repo(root: Path) -> Path:
    Butler.makeRepo(str(root))
    return root


def run(arguments: list[object]) -> Run:
    """Run a butler subcommand; time it and measure its CPU and peak memory."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [BIN / "butler", *map(str, arguments)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr = process.stderr.read() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    # Popen's own bookkeeping of the exit status, which wait4 consumed.
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"butler {' '.join(map(str, arguments))} failed:\n{stderr}")
    match = re.search(r"Ingested .* \((\d+\.\d+) s\)\.", stderr)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # ru_maxrss is in KiB: this is MiB
        ingest=float(match.group(1)) if match else 0.0,
    )


if __name__ == "__main__":
    sys.exit(main())
