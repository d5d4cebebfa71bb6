#!/usr/bin/env bash
# The worked example, with the same commands a user of the LSST stack types:
# synthetic VIRCAM CASU products (built on real CASU headers, known truth) and
# the bundled real DECam Community Pipeline instcal trios are ingested into an
# embedded SQLite butler repository and assembled by VistaIsrTask and
# DecamCpIsrTask through `pipetask run`; then the results are summarised and
# one exposure is exported in the afw FITS layout.
#
# Usage: bin/run_demo.sh [REPO]   (default: demo_repo; data go to demo_data/)
# Every step is safe to repeat: ingest skips what is already there and each
# pipetask run writes a new run in the same output chain.
set -euo pipefail
repo=${1:-demo_repo}
data=demo_data
jobs=2

step() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Create an embedded (SQLite) butler repository in $repo"
if [ -f "$repo/butler.yaml" ]; then
    echo "$repo already exists; reusing it."
else
    run butler create "$repo"
fi

step "Make synthetic VIRCAM pawprint stacks (real CASU header cards, exact truth in $data/vircam/truth/)"
if ls "$data"/vircam/*_st.fit >/dev/null 2>&1; then
    echo "$data/vircam already holds stacks; reusing them."
else
    run python -m lsst.obs.vista.sim "$data/vircam" --stacks 2 --size 512 --detectors 1,2,3,4 --seed 7
fi

step "Ingest the CASU stacks, confidence maps and catalogues (registers VIRCAM, defines visits)"
run butler ingest-casu "$repo" "$data/vircam" --transfer symlink --processes "$jobs"
run butler query-datasets "$repo" --collections VIRCAM/defaults casu_stack

step "Assemble post_isr_image with VistaIsrTask (image, mask, variance, WCS, PSF, zero point)"
run pipetask run -b "$repo" -i VIRCAM/defaults -o u/demo/vircam \
    -p pipelines/VIRCAM/ProcessCcd.yaml#isr --register-dataset-types -j "$jobs"

step "What came out: noise ratio (background noise / predicted sigma), rescale, zero point, masks"
run butler summarize-isr "$repo" --collections u/demo/vircam

step "Ingest the real DECam CP instcal trios (ooi image, oow weight, ood mask; one is fpack-compressed)"
run butler ingest-instcal "$repo" tests/data/decam_cp --transfer direct --processes "$jobs"
run butler query-datasets "$repo" --collections DECam/defaults cp_image

step "Assemble post_isr_image with DecamCpIsrTask (variance = 1/weight, DQ codes by PLVER, TPV WCS)"
run pipetask run -b "$repo" -i DECam/defaults -o u/demo/decam \
    -p pipelines/DECam/ProcessCcd.yaml#isr --register-dataset-types -j "$jobs"
run butler summarize-isr "$repo" --collections u/demo/decam

step "Export one exposure in the afw Exposure FITS layout (for users of the full Rubin stack)"
run butler export-legacy "$repo" "$data/legacy" --collections u/demo/vircam \
    --where "instrument='VIRCAM' AND detector=1" --overwrite
