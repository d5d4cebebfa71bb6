#!/usr/bin/env bash
# make benchmarks: run every benchmark under benchmarks/ (each measures its
# baseline in the same run) and every validation (benchmarks/validate_*.py:
# statistical claims that need more data than a test), then print one table
# of all their ratios (benchmarks/results.py) and keep it in
# benchmarks/output/table.md.
# Extra arguments go to each benchmark.  bench_calibrate.py compares with
# Debian's source-extractor and psfex, bench_coadd.py with Debian's swarp
# (binary SWarp), installed here when missing and run as root (otherwise each
# benchmark says how to install them).  The whole run takes about an hour on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v source-extractor >/dev/null || ! command -v psfex >/dev/null || ! command -v SWarp >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq source-extractor psfex swarp
    fi
fi
mkdir -p benchmarks/output
started=$(date +%s)
status=0
for bench in benchmarks/bench_*.py benchmarks/validate_*.py; do
    printf '\n==> %s\n' "$bench"
    python "$bench" "$@" || status=1
done
printf '\n==> ratios measured in this run\n'
python benchmarks/results.py "$started" | tee benchmarks/output/table.md || status=1
exit $status
