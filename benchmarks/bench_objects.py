"""Benchmark of the objects on a patch against SExtractor in dual-image mode.

On the synthetic two-band field of the object tests (``tests/object_field.py``:
four dithered visits of two VIRCAM-like detectors with known stars,
galaxies and close pairs, coadded in J and Ks by our coadd tasks), in one
run:

- ours: `DetectCoaddPeaksTask` on each band, `MergeCoaddDetectionsTask`,
  `MeasureObjectsRefTask` and `ForcedPhotObjectsTask` on each band, in
  process on the coadds in memory (reading them is not counted);
- the peer: Debian's ``source-extractor`` in dual-image mode on the same
  pixels (Ks detects, each band is measured; its settings are ours:
  ``object_field.source_extractor_dual``), one run per band, reading its
  FITS inputs (writing them is not counted);
- time: CPU seconds of ours against SExtractor's for the patch (target <=
  1.5; CPU rather than wall time because the benchmark machine is shared:
  both run on one core), wall times given for information;
- the patches: the object tests' patch of 6 x 6 cells of 120 pixels
  (960 x 960 outer box), which the visits cover, and one of 16 x 16 cells
  whose corner the field fills (a quarter of the visits' footprint on a
  2160 x 2160 outer box: most of the patch has no data, as where a small
  survey field meets a large patch); ``--quick``: the first only, one
  round.

Completeness (truth objects at Ks S/N >= 10 found) of both is printed. The
rows go to benchmarks/output/objects.rows.json for ``make benchmarks``'
table. SExtractor comes from Debian: ``apt-get install source-extractor``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import Row, record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import coadd_field as field  # noqa: E402  (the object tests' field)
import object_field  # noqa: E402
from lsst.obs.vista.skymap import make_skymap  # noqa: E402

TIME_TARGET = "<= 1.5"
DETECTION_BAND = "Ks"
COVERED_CELLS = 6
"""Cells per patch side of the object tests' patch, which the visits cover."""

CORNER_CELLS = 16
"""Cells per patch side of a patch whose corner the visits fill."""

MATCH_RADIUS = 3.0
"""Tract pixels between a detection and its truth."""


def completeness(x: np.ndarray, y: np.ndarray, truth, bright: np.ndarray) -> float:
    """Share of the bright truth objects with a detection within MATCH_RADIUS."""
    distance = np.hypot(x[:, None] - truth.x[None], y[:, None] - truth.y[None])
    found = np.unique(distance.argmin(axis=1)[distance.min(axis=1) < MATCH_RADIUS])
    return float(np.isin(np.nonzero(bright)[0], found).mean())


def measure_patch(cells: int, repeat: int, scratch: Path) -> list[Row]:
    """Time ours and the peer on the field's patch of a skymap with
    ``cells`` x ``cells`` cells per patch; print what was found; return the
    rows."""
    config = field.skymap_config()
    config.tractBuilder["cells"].numCellsPerPatchInner = cells
    skymap = make_skymap(config)
    patch = skymap[0].find_patch(*field.CENTRE).id
    truth = object_field.truth(skymap=skymap)
    base = field.make_base(scratch / f"base{cells}")
    coadds = {
        band: object_field.coadd(base, truth, band, seed=10 + k, skymap=skymap)
        for k, band in enumerate(object_field.BANDS)
    }
    size = "x".join(str(n) for n in coadds[DETECTION_BAND].bbox.shape)
    print(f"patch of {cells} x {cells} cells, outer box {size}: {len(truth.x)} truth objects")
    ours_cpu = ours_wall = peer_cpu = peer_wall = float("inf")
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        measured = object_field.measure_patch(coadds, patch, skymap)
        reference, forced = measured.reference, measured.forced
        ours_cpu = min(ours_cpu, time.process_time() - start_cpu)
        ours_wall = min(ours_wall, time.perf_counter() - start_wall)
        peer = object_field.source_extractor_dual(coadds, DETECTION_BAND, scratch / f"peer{cells}")
        peer_cpu, peer_wall = min(peer_cpu, peer.cpu_seconds), min(peer_wall, peer.seconds)
    noise = np.nanmedian(forced[DETECTION_BAND]["psfFluxErr"])
    bright = truth.flux[DETECTION_BAND] / noise >= 10
    primary = reference[reference["detect_isPrimary"]]
    ours_completeness = completeness(np.asarray(primary["x"]), np.asarray(primary["y"]), truth, bright)
    catalogue = peer.catalogues[DETECTION_BAND]
    peer_completeness = completeness(np.asarray(catalogue["x"]), np.asarray(catalogue["y"]), truth, bright)
    print(
        f"  {len(reference)} objects (ours), {len(catalogue)} (SExtractor); completeness at "
        f"{DETECTION_BAND} S/N >= 10 ({bright.sum()}): ours {ours_completeness:.3f}, "
        f"SExtractor {peer_completeness:.3f}"
    )
    print(
        f"  CPU: ours {ours_cpu:.2f} s, SExtractor {peer_cpu:.2f} s, ratio {ours_cpu / peer_cpu:.2f} "
        f"(target {TIME_TARGET}); wall: ours {ours_wall:.2f} s, SExtractor {peer_wall:.2f} s"
    )
    name = f"objects per patch ({size}, {cells}x{cells} cells) / SExtractor dual-image"
    return [
        Row(f"{name}, CPU", ours_cpu, peer_cpu, target=TIME_TARGET),
        Row(f"{name}, wall", ours_wall, peer_wall),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the object tests' patch only, one round")
    parser.add_argument("--repeat", type=int, default=2, help="timed rounds (the best is kept)")
    args = parser.parse_args()
    if shutil.which(object_field.SOURCE_EXTRACTOR) is None:
        sys.exit(
            f"{object_field.SOURCE_EXTRACTOR} is not installed: sudo apt-get install -y source-extractor"
        )
    output = ROOT / "benchmarks" / "output"
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        for cells in [COVERED_CELLS] if args.quick else [COVERED_CELLS, CORNER_CELLS]:
            rows += measure_patch(cells, 1 if args.quick else args.repeat, Path(scratch))
    print(f"rows in {record('objects', rows)}")


if __name__ == "__main__":
    main()
