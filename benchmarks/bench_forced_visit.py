"""Benchmark of forcedPhotCcd (forced photometry of objects on visits).

On bench_coadd's synthetic dithered field (VIRCAM-like detectors of known
stars, Gaussian PSFs, white noise, photometric scalings), in one run:

- throughput: objects x detector images measured per second by
  `ForcedPhotCcdTask.run` with N objects at random positions on the
  detectors (an object table of coord_ra, coord_dec and detect_isPrimary);
- scaling: the wall time with 4N objects against N (target <= 4.4: the
  cost is per object, with no quadratic part).

The images are in memory; reading them is not counted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table
from bench_coadd import base_image, detector_wcs, make_field, visit_image
from results import Row, record

from lsst.obs.vista.objects import ForcedPhotCcdTask, pack_object_ids

ROOT = Path(__file__).resolve().parent.parent
SCALING = 4
SCALING_TARGET = "<= 4.4"


def object_table(field, n: int, seed: int) -> Table:
    """``n`` primary objects at random positions within the field's detectors."""
    rng = np.random.default_rng(seed)
    wcs = detector_wcs(field, field.visits[0])
    size = field.detector_size
    ra, dec = wcs.wcs_pix2world(rng.uniform(0, size - 1, n), rng.uniform(0, size - 1, n), 0)
    table = Table()
    table["objectId"] = pack_object_ids(0, 0, np.arange(1, n + 1))
    table["coord_ra"], table["coord_dec"] = ra, dec
    table["detect_isPrimary"] = np.ones(n, dtype=bool)
    return table


def time_run(task: ForcedPhotCcdTask, images: list, objects: Table, repeat: int) -> tuple[float, int]:
    """Best wall time over ``repeat`` rounds of every image, and the rows measured."""
    best, rows = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = sum(
            len(task.run(image, objects, visit=k, detector=1).forced_source) for k, image in enumerate(images)
        )
        best = min(best, time.perf_counter() - start)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--visits", type=int, default=3, help="visits (one detector each)")
    parser.add_argument("--objects", type=int, default=2000, help="N, the smaller object count")
    parser.add_argument("--detector-size", type=int, default=2048, help="detector side (pixels)")
    parser.add_argument("--repeat", type=int, default=2, help="timed rounds (the best is kept)")
    args = parser.parse_args()
    output = ROOT / "benchmarks" / "output"
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        field = make_field(args.visits, args.detector_size)
        base = base_image(Path(scratch))
        images = [visit_image(field, visit, base, detector_wcs(field, visit)) for visit in field.visits]
    task = ForcedPhotCcdTask()
    small, small_rows = time_run(task, images, object_table(field, args.objects, 1), args.repeat)
    large, large_rows = time_run(task, images, object_table(field, SCALING * args.objects, 2), args.repeat)
    rate = large_rows / large
    print(
        f"{small_rows} object-images in {small:.2f} s, {large_rows} in {large:.2f} s: {rate:.0f} per second"
    )
    print(f"{SCALING}x the objects: {large / small:.2f}x the time (target {SCALING_TARGET})")
    path = record(
        "forced_visit",
        [
            Row("forcedPhotCcd object-images per second", rate, 1.0, unit="1/s"),
            Row(
                f"forcedPhotCcd {SCALING}N / N objects ({args.objects})",
                large,
                small,
                target=SCALING_TARGET,
            ),
        ],
    )
    print(f"rows in {path}")


if __name__ == "__main__":
    main()
