"""Write time and file size of each write recipe (config/butler/seed*.yaml).

One full-size synthetic VIRCAM detector (2048 pixels + jitter) is assembled
by `VistaIsrTask` in process; for each seed a fresh repository is created
with it, the stack ingested, and the ``post_isr_image`` written with
``Butler.put`` (``R`` times, the median kept), which is the path a
``pipetask run`` quantum takes.  For each recipe the table gives the put
time, the file size, and what the recipe loses: the standard deviation of
the pixel differences to the lossless file, in units of the image's sky
noise.

The rows go to benchmarks/output/bench_write_recipes.rows.json for
``make benchmarks``' table.

Usage: ``python benchmarks/bench_write_recipes.py [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from lsst.daf.butler import Butler, Config, DatasetType
from lsst.images import VisitImage

from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.cli.script import ingest_products
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.isr import VistaIsrConfig
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from results import Row, record

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {"lossless": "seed.yaml", "fast": "seed-fast.yaml", "small": "seed-small.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="puts per recipe (median kept)")
    args = parser.parse_args()
    config = VistaIsrConfig()
    Vircam().applyConfigOverrides("isr", config)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = write_pawprint_stack(work / "data", 0, SimulationConfig(size=2048, detectors=(1,), seed=1))

        exposure = (
            VistaIsrTask(config=config)
            .run(
                read_image_hdu(files.stack, "DET1.CHIP1", unit=u.adu),
                read_image_hdu(files.confidence, "DET1.CHIP1", unit=None),
            )
            .outputExposure
        )
        sky_noise = float(np.sqrt(np.median(exposure.variance.array)))
        pixels: dict[str, np.ndarray] = {}
        measured: dict[str, tuple[float, float]] = {}
        print(f"{'recipe':<9} {'put (s)':>8} {'size (MB)':>10} {'added noise / sky noise':>24}")
        for recipe, seed in SEEDS.items():
            root = work / recipe
            Butler.makeRepo(str(root), config=Config(str(ROOT / "config" / "butler" / seed)))
            Vircam().register(Butler.from_config(str(root), writeable=True).registry)
            ingest_products(str(root), [str(files.stack), str(files.confidence)], "symlink", 1, ["VIRCAM"])
            butler = Butler.from_config(str(root), writeable=True)
            stack_ref = butler.query_datasets("casu_stack", collections="VIRCAM/defaults")[0]
            butler.registry.registerDatasetType(
                DatasetType(
                    "post_isr_image",
                    ("instrument", "exposure", "detector"),
                    "VisitImage",
                    universe=butler.dimensions,
                )
            )
            times = []
            for attempt in range(args.repeat):
                run = f"bench/{attempt}"
                butler.registry.registerRun(run)
                start = time.perf_counter()
                ref = butler.put(exposure, "post_isr_image", stack_ref.dataId, run=run)
                times.append(time.perf_counter() - start)
            path = Path(butler.getURI(ref).ospath)
            pixels[recipe] = VisitImage.read(str(path)).image.array
            lost = float(np.std(pixels[recipe] - pixels["lossless"])) / sky_noise
            measured[recipe] = (statistics.median(times), path.stat().st_size / 1e6)
            print(f"{recipe:<9} {measured[recipe][0]:8.2f} {measured[recipe][1]:10.1f} {lost:24.4f}")
        lossless_time, lossless_size = measured.pop("lossless")
        rows = []
        for recipe, (seconds, size) in measured.items():
            rows.append(Row(f"Butler.put of a full-size detector, {recipe} / lossless", seconds, lossless_time))
            rows.append(Row(f"file size, {recipe} / lossless", size, lossless_size, "MB"))
        record("bench_write_recipes", rows)


if __name__ == "__main__":
    main()
