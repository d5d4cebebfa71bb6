"""Benchmark of ``processCcd.py -j N``: serial, pipetask's own ``-j N``, and the
sharded run (N concurrent single-process quantum-backed runs on balanced groups
of data IDs).

On full-size (2048 x 2048) synthetic VIRCAM detectors (``lsst.obs.vista.sim``,
seed 3, with its Gaia-like reference catalogue) in a fresh SQLite repository
from config/butler/seed.yaml, the whole ProcessCcd pipeline (isr and
calibrateImage) runs, each round, as

- ``-j 1``: processCcd.py -j 1 (one ``pipetask run -j 1``);
- ``pipetask -j N``: the same ``pipetask run`` with ``-j N``, which starts a
  process per quantum;
- ``sharded -j N``: processCcd.py -j N;

taking turns within each round, each into its own output collection.  For
each: the wall clock, the CPU time of its processes, and the CPU time the
rest of the machine used meanwhile (from /proc/stat), since on a shared
machine that is what the speed-up lost goes to.  The table is printed and
written to benchmarks/output/bench_process_ccd.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsst.obs.vista.cli.process_ccd import build_pipetask_command

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _busy_cpu_seconds() -> float:
    """Return the machine's busy CPU time since boot (all cores), in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _timed(command: list[str], log: Path) -> dict[str, float]:
    """Run ``command``; return its wall time, its CPU time and the others' CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _busy_cpu_seconds()
    start = time.perf_counter()
    with log.open("w") as stream:
        subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "others_cpu": max(_busy_cpu_seconds() - busy - cpu, 0.0)}


def _make_repo(work: Path, detectors: int, stacks: int) -> Path:
    repo = work / "repo"
    sim = work / "sim"
    listed = ",".join(str(d) for d in range(1, detectors + 1))
    steps = [
        [sys.executable, "-m", "lsst.obs.vista.sim", sim, "--stacks", stacks, "--detectors", listed,
         "--seed", "3", "--refcat", work / "gaia.fits"],
        [BIN / "butler", "create", "--seed-config", ROOT / "config" / "butler" / "seed.yaml", repo],
        [BIN / "butler", "ingest-casu", repo, sim, "--transfer", "symlink"],
        [BIN / "butler", "ingest-refcat", repo, "gaia_dr3", work / "gaia.fits"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([str(s) for s in step], check=True, capture_output=True, cwd=ROOT)
    return repo


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", type=int, default=8, help="detectors per stack (default 8)")
    parser.add_argument("--stacks", type=int, default=1, help="pawprint stacks (default 1)")
    parser.add_argument("-j", "--processes", type=int, default=2, help="N (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (default 1)")
    parser.add_argument(
        "--workdir", type=Path, help="where to build the repository (default: a temporary one)"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_process_ccd_"))
    work.mkdir(parents=True, exist_ok=True)
    repo = str(_make_repo(work, args.detectors, args.stacks))
    n = args.processes
    process_ccd = [str(BIN / "processCcd.py"), repo, "--id", "instrument=VIRCAM"]

    def pipetask(output: str) -> list[str]:
        command = build_pipetask_command(
            repo, instrument="VIRCAM", where="instrument='VIRCAM'",
            inputs=["VIRCAM/defaults", "refcats/gaia_dr3"], output=output, jobs=n,
        )  # fmt: skip
        return [str(BIN / "pipetask"), *command[1:]]

    modes = {
        "-j 1": lambda out: [*process_ccd, "-j", "1", "-o", out],
        f"pipetask -j {n}": pipetask,
        f"sharded -j {n}": lambda out: [*process_ccd, "-j", str(n), "-o", out],
    }
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    names = list(modes)
    for round_ in range(args.rounds):
        for mode in names[round_ % len(names) :] + names[: round_ % len(names)]:
            output = f"u/bench/{mode.replace(' ', '').replace('-', '')}/r{round_}"
            log = work / f"{output.replace('/', '_')}.log"
            results[mode].append(_timed(modes[mode](output), log))
    quanta = 2 * args.detectors * args.stacks
    serial = min(r["wall"] for r in results["-j 1"])
    print(f"processCcd.py on {args.detectors * args.stacks} full-size VIRCAM detectors ({quanta} quanta), "
          f"{os.cpu_count()} cores, best of {args.rounds}")  # fmt: skip
    print(f"{'mode':<16}{'wall s':>9}{'CPU s':>9}{'others CPU s':>14}{'speed-up':>10}")
    table = {}
    for mode, runs in results.items():
        best = min(runs, key=lambda r: r["wall"])
        table[mode] = {**best, "speed_up": serial / best["wall"], "rounds": runs}
        print(
            f"{mode:<16}{best['wall']:>9.1f}{best['cpu']:>9.1f}{best['others_cpu']:>14.1f}"
            f"{serial / best['wall']:>10.2f}"
        )
    out = ROOT / "benchmarks" / "output" / "bench_process_ccd.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"detectors": args.detectors * args.stacks, "table": table}, indent=2))


if __name__ == "__main__":
    main()
