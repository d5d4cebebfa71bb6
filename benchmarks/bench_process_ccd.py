"""Benchmark of ``processCcd.py -j N`` against ``-j 1`` and ``bps submit``
with the parsl plugin's local site.

On full-size (2048 x 2048) synthetic VIRCAM detectors (``lsst.obs.vista.sim``,
seed 3, with its Gaia-like reference catalogue; 4 stacks of 16 by default) in
a fresh SQLite repository from config/butler/seed.yaml, the whole ProcessCcd
pipeline (isr and calibrateImage) runs, each round, as

- ``-j 1``: processCcd.py -j 1 (one ``pipetask run -j 1``);
- ``sharded -j N``: processCcd.py -j N (N concurrent single-process
  quantum-backed runs on balanced groups of data IDs);
- ``bps parsl``: ``bps submit`` of bps/ProcessCcd.yaml (one job per
  exposure) with the local parsl site and N workers (not on a Python with
  CPython gh-127847, whose bps jobs fail: see lsst.obs.vista.batch);
- with ``--pipetask-j``, also ``pipetask -j N``: the same ``pipetask run``
  with ``-j N``, which starts a process per quantum;

taking turns within each round, each into its own output collection; then
``-j 1`` on the first stack alone, for the scaling with the number of stacks.
For each: the wall clock, the CPU time of its processes, the CPU time the
rest of the machine used meanwhile (from /proc/stat, since on a shared
machine that is what the speed-up lost goes to) and the peak resident memory
of its process tree.  (The CPU time of processes is what their parents
collected when they ended: parsl's workers end without that, so bps' jobs
count under the others' CPU time.)  The table is printed and written to
benchmarks/output/bench_process_ccd.json, the rows of ``make benchmarks``'
table to bench_process_ccd.rows.json.  The default takes about 15 minutes
and 9 GB of temporary disk (the simulator's truth files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from lsst.daf.butler import Butler

from lsst.obs.vista._resources import BPS_DIR
from lsst.obs.vista.batch import ZIPFILE_SEEK_BUG, bps_submit_command, has_zipfile_seek_bug
from lsst.obs.vista.cli.process_ccd import build_pipetask_command
from results import Row, record

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _busy_cpu_seconds() -> float:
    """Return the machine's busy CPU time since boot (all cores), in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class RunFailed(RuntimeError):
    """A timed command exited with an error."""


def _tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _timed(command: list[str], log: Path) -> dict[str, float]:
    """Run ``command``; return its wall time, its CPU time, the others' CPU
    time and the peak resident memory of its process tree (sampled every
    0.2 s: concurrent workers count together)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _busy_cpu_seconds()
    start = time.perf_counter()
    peak = 0
    with log.open("w") as stream:
        # In the work directory, where bps puts its submission (under ${PWD}) and parsl its runinfo/.
        environment = {**os.environ, "PWD": str(log.parent), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        process = subprocess.Popen(
            command, stdout=stream, stderr=subprocess.STDOUT, cwd=log.parent, env=environment
        )
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            peak = max(peak, _tree_rss(watched))
            time.sleep(0.2)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RunFailed(f"{' '.join(command)} failed (exit {process.returncode}); its log: {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall": wall,
        "cpu": cpu,
        "others_cpu": max(_busy_cpu_seconds() - busy - cpu, 0.0),
        "peak_rss_mib": peak / 2**20,
    }


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


def _first_exposure(repo: str) -> int:
    """The exposure of the first stack (for the scaling comparison)."""
    with Butler.from_config(repo) as butler:
        return min(record.id for record in butler.query_dimension_records("exposure", instrument="VIRCAM"))


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", type=int, default=16, help="detectors per stack (default 16)")
    parser.add_argument("--stacks", type=int, default=4, help="pawprint stacks (default 4)")
    parser.add_argument("-j", "--processes", type=int, default=2, help="N (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (default 1)")
    parser.add_argument(
        "--pipetask-j", action="store_true", help="also time pipetask's own -j N (a process per quantum)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to build the repository and keep it (default: a temporary one)"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_process_ccd_"))
    work.mkdir(parents=True, exist_ok=True)
    # Kept when a run fails, for its logs.
    table, scaling = _measure(args, work)
    if args.workdir is None:
        shutil.rmtree(work)
    detectors = args.detectors * args.stacks
    best_local = min(entry["wall"] for mode, entry in table.items() if mode != "bps parsl")
    rows = [
        Row(f"processCcd.py -j 1 / {mode}, {detectors} full-size detectors", table["-j 1"]["wall"],
            entry["wall"], "s", ">= 1.7" if mode == f"sharded -j {args.processes}" else None,
            entry["peak_rss_mib"])
        for mode, entry in table.items() if mode != "-j 1"
    ]  # fmt: skip
    rows.insert(0, Row(f"processCcd.py -j 1, {detectors} detectors, per detector", table["-j 1"]["wall"] / detectors,
                       table["-j 1"]["wall"] / detectors, "s", None, table["-j 1"]["peak_rss_mib"]))  # fmt: skip
    if "bps parsl" in table:
        rows.append(Row(f"bps parsl / best single-machine run, {detectors} detectors", table["bps parsl"]["wall"],
                        best_local, "s", "<= 1.2", table["bps parsl"]["peak_rss_mib"]))  # fmt: skip
    if scaling is not None:
        rows.append(Row(f"processCcd.py -j 1, {args.stacks} / 1 stacks", table["-j 1"]["wall"], scaling["wall"], "s",
                        f"<= {1.1 * args.stacks:g}", table["-j 1"]["peak_rss_mib"]))  # fmt: skip
    record("bench_process_ccd", rows)


def _measure(args: argparse.Namespace, work: Path) -> tuple[dict[str, dict], dict[str, float] | None]:
    """Time each mode on a fresh repository; return the table and the -j 1
    run of the first stack alone (`None` with one stack)."""
    repo = str(_make_repo(work, args.detectors, args.stacks))
    n = args.processes
    process_ccd = [str(BIN / "processCcd.py"), repo, "--id", "instrument=VIRCAM"]

    def pipetask(output: str) -> list[str]:
        command = build_pipetask_command(
            repo, instrument="VIRCAM", where="instrument='VIRCAM'",
            inputs=["VIRCAM/defaults", "refcats/gaia_dr3"], output=output, jobs=n,
        )  # fmt: skip
        return [str(BIN / "pipetask"), *command[1:]]

    # The local site's worker count comes from a configuration file: one of
    # ours that includes the package's and sets it.
    submit_config = work / "bps-submit.yaml"
    submit_config.write_text(
        f"includeConfigs:\n  - {BPS_DIR / 'ProcessCcd.yaml'}\nsite:\n  local:\n    cores: {n}\n"
    )

    def bps(output: str) -> list[str]:
        command = bps_submit_command(repo, output, "instrument='VIRCAM'", submit_config=str(submit_config))
        return [str(BIN / "bps"), *command[1:]]

    modes = {
        "-j 1": lambda out: [*process_ccd, "-j", "1", "-o", out],
        f"sharded -j {n}": lambda out: [*process_ccd, "-j", str(n), "-o", out],
    }
    if has_zipfile_seek_bug():
        print(f"bps parsl not run: Python {platform.python_version()} has {ZIPFILE_SEEK_BUG}, "
              "which stops bps jobs with EOFError; run this benchmark with a fixed Python", file=sys.stderr)  # fmt: skip
    else:
        modes["bps parsl"] = bps
    if args.pipetask_j:
        modes[f"pipetask -j {n}"] = pipetask
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    names = list(modes)
    for round_ in range(args.rounds):
        for mode in names[round_ % len(names) :] + names[: round_ % len(names)]:
            output = f"u/bench/{mode.replace(' ', '').replace('-', '')}/r{round_}"
            log = work / f"{output.replace('/', '_')}.log"
            try:
                results[mode].append(_timed(modes[mode](output), log))
            except RunFailed as error:
                # bps is a comparison, not the subject: the others' figures still count.
                if mode != "bps parsl":
                    raise
                print(f"bps parsl run not timed: {error}", file=sys.stderr)
    results = {mode: runs for mode, runs in results.items() if runs}
    scaling = None
    if args.stacks > 1:
        first = [*process_ccd, "--id", f"exposure={_first_exposure(repo)}", "-j", "1", "-o", "u/bench/one_stack"]
        scaling = _timed(first, work / "one_stack.log")
    quanta = 2 * args.detectors * args.stacks
    serial = min(r["wall"] for r in results["-j 1"])
    print(f"processCcd.py on {args.detectors * args.stacks} full-size VIRCAM detectors ({quanta} quanta), "
          f"{os.cpu_count()} cores, best of {args.rounds}")  # fmt: skip
    print(f"{'mode':<16}{'wall s':>9}{'CPU s':>9}{'others CPU s':>14}{'peak MiB':>10}{'speed-up':>10}")
    table = {}
    for mode, runs in results.items():
        best = min(runs, key=lambda r: r["wall"])
        table[mode] = {**best, "speed_up": serial / best["wall"], "rounds": runs}
        print(
            f"{mode:<16}{best['wall']:>9.1f}{best['cpu']:>9.1f}{best['others_cpu']:>14.1f}"
            f"{best['peak_rss_mib']:>10.0f}{serial / best['wall']:>10.2f}"
        )
    if scaling is not None:
        print(f"-j 1 on the first of {args.stacks} stacks: {scaling['wall']:.1f} s; "
              f"{args.stacks} stacks take {serial / scaling['wall']:.2f}x as long")  # fmt: skip
    out = ROOT / "benchmarks" / "output" / "bench_process_ccd.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"detectors": args.detectors * args.stacks, "table": table, "one_stack": scaling}, indent=2)
    )
    return table, scaling


if __name__ == "__main__":
    main()
