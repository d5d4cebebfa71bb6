#!/usr/bin/env bash
# The worked example: an embedded SQLite butler repository with the VIRCAM
# instrument registered, built with the same `butler` commands a user types.
# Usage: bin/run_demo.sh [REPO]   (default: demo_repo)
set -euo pipefail
repo=${1:-demo_repo}

step() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Create an embedded (SQLite) butler repository in $repo"
if [ -f "$repo/butler.yaml" ]; then
    echo "$repo already exists; reusing it (every step below is safe to repeat)."
else
    run butler create "$repo"
fi

step "Register the VIRCAM instrument (detectors, filters, visit system)"
run butler register-instrument "$repo" lsst.obs.vista.Vircam

step "What the repository holds"
run butler query-dimension-records "$repo" instrument
run butler query-dimension-records "$repo" physical_filter --where "instrument='VIRCAM'"
run butler query-dimension-records "$repo" detector --where "instrument='VIRCAM'"
