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
- for information, the full path a quantum takes outside the middleware:
  read the inputs, ``run``, and write the `VisitImage` with lsst-images (its
  default lossless compression).

Then the middleware: ``pipetask run`` of ProcessCcd.yaml#isr over the
detectors of one stack (16 by default) in a fresh repository, against the
same number of in-process read + ``run`` + write, as a ratio.

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
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from lsst.images import Image

from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


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

        def full_path() -> None:
            path = work / "visit_image.fits"
            path.unlink(missing_ok=True)
            task.run(*read_inputs(files.stack, files.confidence, extname)).outputExposure.write(str(path))

        full_time = statistics.median(timed({"full": full_path}, min(args.repeat, 5))["full"])
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
        print(
            f"  read + run + VisitImage.write (compressed):   {full_time * 1e3:7.1f} ms"
            f"   ratio {full_time / floor_time:.2f} (information)"
        )

        repo = work / "repo"
        subprocess.run([BIN / "butler", "create", repo], check=True, capture_output=True)
        subprocess.run(
            [BIN / "butler", "register-instrument", repo, "lsst.obs.vista.Vircam"],
            check=True,
            capture_output=True,
        )
        subprocess.run([BIN / "butler", "ingest-casu", repo, work / "data"], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(
            [
                BIN / "pipetask",
                "run",
                "-b",
                repo,
                "-i",
                "VIRCAM/defaults",
                "-o",
                "bench/isr",
                "--register-dataset-types",
                "-p",
                f"{ROOT / 'pipelines' / 'VIRCAM' / 'ProcessCcd.yaml'}#isr",
            ],
            check=True,
            capture_output=True,
        )
        pipetask_time = time.perf_counter() - start

        def in_process() -> None:
            for detector in detectors:
                path = work / f"in_process_{detector}.fits"
                path.unlink(missing_ok=True)
                inputs = read_inputs(files.stack, files.confidence, f"DET1.CHIP{detector}")
                task.run(*inputs).outputExposure.write(str(path))

        start = time.perf_counter()
        in_process()
        in_process_time = time.perf_counter() - start
        start = time.perf_counter()
        for detector in detectors:
            task.run(*read_inputs(files.stack, files.confidence, f"DET1.CHIP{detector}"))
        run_only_time = time.perf_counter() - start
        print(f"\n{len(detectors)} detectors:")
        print(f"  pipetask run (graph, I/O, provenance, one process): {pipetask_time:6.1f} s")
        print(
            f"  {len(detectors)} x (read + run + write) in process:        {in_process_time:6.1f} s"
            f"   middleware overhead ratio {pipetask_time / in_process_time:.2f}"
        )
        print(
            f"  {len(detectors)} x (read + run):                           {run_only_time:6.1f} s"
            f"   pipetask / (read + run) {pipetask_time / run_only_time:.2f}"
        )


if __name__ == "__main__":
    main()
