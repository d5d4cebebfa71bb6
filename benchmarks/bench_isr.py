"""Benchmark of VistaIsrTask against floors measured in the same run.

Per detector of a full-size synthetic CASU stack (2048 pixels + jitter):

- floor: astropy reads the stack and confidence HDUs (BSCALE applied) and
  writes the three output planes (image, int32 mask, variance) uncompressed;
- ``run``: `VistaIsrTask.run` on the inputs in memory (all the assembly:
  masks, variance model with edge calibration, noise check, WCS, PSF, zero
  point), as a ratio to the floor (target <= 1.3), and the share of the
  edge calibration;
- peak memory allocated during ``run`` (tracemalloc sees numpy's
  allocations), as a ratio to the size of the output planes (target <= 4);
- end to end, for each write recipe (config/butler/seed*.yaml): read the
  inputs, ``run``, and ``Butler.put`` the `VisitImage` into a repository
  created from the recipe's seed (the path a quantum takes outside the
  middleware), as a ratio to the floor (target with ``fast``: <= 4).

Then the middleware: ``pipetask run`` of ProcessCcd.yaml#isr over the
detectors of one stack (16 by default) in each recipe's repository, per
detector, against the floor.  The rows go to
benchmarks/output/bench_isr.rows.json for ``make benchmarks``' table.

Usage: ``python benchmarks/bench_isr.py [--detectors N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from lsst.daf.butler import Butler, Config, DataCoordinate, DatasetType
from lsst.images import Image

from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from results import Row, record

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEEDS = {"lossless": "seed.yaml", "fast": "seed-fast.yaml", "small": "seed-small.yaml"}
END_TO_END_TARGETS = {"fast": "<= 4"}
"""The issue's target: with the fast recipe, a detector's read + assembly +
write within 4x of the astropy floor."""


def read_inputs(stack: Path, confidence: Path, extname: str) -> tuple[Image, Image]:
    """Read one detector with the ingest formatter's reader."""
    return read_image_hdu(stack, extname, unit=u.adu), read_image_hdu(confidence, extname, unit=None)


def floor(stack: Path, confidence: Path, extname: str, output: Path) -> None:
    """astropy read of the two input HDUs and write of three planes."""
    with fits.open(stack) as hdus:
        image = hdus[extname].data
    with fits.open(confidence) as hdus:
        conf = hdus[extname].data
    mask = np.zeros(image.shape, dtype=np.int32)
    variance = np.zeros(image.shape, dtype=np.float32)
    np.divide(np.float32(1.0), conf, out=variance, where=conf > 0)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(image.astype(np.float32), name="IMAGE"),
            fits.ImageHDU(mask, name="MASK"),
            fits.ImageHDU(variance, name="VARIANCE"),
        ]
    ).writeto(output, overwrite=True)


def timed(functions: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each function over ``repeat`` rounds after one warm-up.

    The functions take turns within a round, so that a slow spell of the
    machine weighs on all of them alike: ratios are taken round by round.
    """
    times: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        function()
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio of two functions' times."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", type=int, default=16, help="detectors for the pipetask comparison")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds (each function once per round)")
    args = parser.parse_args()

    config = VistaIsrConfig()
    Vircam().applyConfigOverrides("isr", config)
    task = VistaIsrTask(config=config)

    output = ROOT / "benchmarks" / "output"
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        work = Path(scratch)
        detectors = tuple(range(1, args.detectors + 1))
        start = time.perf_counter()
        simulation = SimulationConfig(size=2048, detectors=detectors, seed=1)
        files = write_pawprint_stack(work / "data", 0, simulation)
        print(f"simulated {len(detectors)} full-size detectors in {time.perf_counter() - start:.1f} s")
        extname = "DET1.CHIP1"
        image, conf = read_inputs(files.stack, files.confidence, extname)

        plain_config = VistaIsrConfig()
        Vircam().applyConfigOverrides("isr", plain_config)
        plain_config.variance.doEdgeCalibration = False
        plain_task = VistaIsrTask(config=plain_config)
        measured = timed(
            {
                "floor": lambda: floor(files.stack, files.confidence, extname, work / "floor.fits"),
                "run": lambda: task.run(image, conf),
                "plain": lambda: plain_task.run(image, conf),
            },
            args.repeat,
        )
        floor_time, run_time, plain_time = (
            statistics.median(measured[name]) for name in ("floor", "run", "plain")
        )
        run_ratio = median_ratio(measured["run"], measured["floor"])
        plain_ratio = median_ratio(measured["plain"], measured["floor"])

        tracemalloc.start()
        exposure = task.run(image, conf).outputExposure
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        planes = exposure.image.array.nbytes + exposure.mask.array.nbytes + exposure.variance.array.nbytes

        # The path a quantum takes outside the middleware, with each write recipe:
        # read the inputs, run, and Butler.put the VisitImage into a repository
        # created from the recipe's seed.
        repos = {recipe: make_repo(work / recipe, seed, files) for recipe, seed in SEEDS.items()}
        puts = iter(range(10**6))

        def end_to_end(butler: Butler, data_id: DataCoordinate) -> None:
            exposure = task.run(*read_inputs(files.stack, files.confidence, extname)).outputExposure
            run = f"bench/{next(puts)}"
            butler.collections.register(run)
            butler.put(exposure, "post_isr_image", data_id, run=run)

        recipe_times = timed(
            {
                "floor": lambda: floor(files.stack, files.confidence, extname, work / "floor.fits"),
                **{recipe: partial(end_to_end, *repo) for recipe, repo in repos.items()},
            },
            min(args.repeat, 5),
        )
        ny, nx = image.array.shape
        print(f"\nper detector ({nx} x {ny} pixels; times and ratios are medians over {args.repeat} rounds):")
        print(f"  floor (astropy read 2 HDUs + write 3 planes): {floor_time * 1e3:7.1f} ms")
        print(
            f"  VistaIsrTask.run:                             {run_time * 1e3:7.1f} ms"
            f"   ratio {run_ratio:.2f} (target <= 1.3)"
        )
        print(
            f"    of which the edge calibration:              {(run_time - plain_time) * 1e3:7.1f} ms"
            f"   ratio without it {plain_ratio:.2f}"
        )
        print(
            f"  peak memory during run: {peak / 2**20:.1f} MiB; output planes {planes / 2**20:.1f} MiB;"
            f" ratio {peak / planes:.2f} (target <= 4)"
        )
        rows = [
            Row("isr run / astropy floor, per full-size detector", run_time, floor_time, "s", "<= 1.3",
                peak / 2**20),
            Row("isr peak memory (traced) / output planes", peak / 2**20, planes / 2**20, "MiB", "<= 4"),
        ]  # fmt: skip
        for recipe in SEEDS:
            ratio = median_ratio(recipe_times[recipe], recipe_times["floor"])
            seconds = statistics.median(recipe_times[recipe])
            target = END_TO_END_TARGETS.get(recipe)
            print(
                f"  read + run + Butler.put, {recipe:<9s}:          {seconds * 1e3:7.1f} ms"
                f"   ratio {ratio:.2f}" + (f" (target {target})" if target else "")
            )
            rows.append(
                Row(f"end-to-end isr ({recipe}) / astropy floor, per detector", seconds,
                    statistics.median(recipe_times["floor"]), "s", target)
            )  # fmt: skip

        pipetask_times = {}
        for recipe in repos:
            root = work / recipe
            start = time.perf_counter()
            subprocess.run(
                [
                    BIN / "pipetask", "run", "-b", root, "-i", "VIRCAM/defaults", "-o", "bench/isr",
                    "--register-dataset-types", "-p", f"{ROOT / 'pipelines' / 'VIRCAM' / 'ProcessCcd.yaml'}#isr",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
            pipetask_times[recipe] = time.perf_counter() - start
        print(f"\n{len(detectors)} detectors, pipetask run -j 1 (graph, I/O, provenance, one process):")
        for recipe, seconds in pipetask_times.items():
            per_detector = seconds / len(detectors)
            print(
                f"  {recipe:<9s} {seconds:6.1f} s, {per_detector:5.2f} s per detector"
                f"   ratio to the floor {per_detector / floor_time:.1f}"
            )
            rows.append(
                Row(f"pipetask isr ({recipe}, {len(detectors)} detectors) / floor, per detector",
                    per_detector, floor_time, "s")
            )  # fmt: skip
        record("bench_isr", rows)


def make_repo(root: Path, seed: str, files) -> tuple[Butler, DataCoordinate]:
    """A repository created from ``seed`` with the stack ingested; return a
    writeable butler and the data ID of its first detector."""
    Butler.makeRepo(str(root), config=Config(str(ROOT / "config" / "butler" / seed)))
    with Butler.from_config(str(root), writeable=True) as butler:
        Vircam().register(butler.registry)
    ingest_products(str(root), [str(files.stack), str(files.confidence)], "symlink", 1, ["VIRCAM"])
    butler = Butler.from_config(str(root), writeable=True)
    butler.registry.registerDatasetType(
        DatasetType("post_isr_image", ("instrument", "exposure", "detector"), "VisitImage",
                    universe=butler.dimensions)
    )  # fmt: skip
    stack = butler.query_datasets(
        "casu_stack", collections="VIRCAM/defaults", where="instrument = 'VIRCAM' AND detector = 1"
    )[0]
    return butler, stack.dataId


if __name__ == "__main__":
    main()
