#!/usr/bin/env bash
# The worked example, with the commands a user of the LSST stack types:
# synthetic VIRCAM CASU stacks (real CASU header cards, exact truth) with a
# synthetic Gaia-like reference catalogue, and the bundled real DECam
# Community Pipeline instcal trios with their real Gaia chunks, are ingested
# into an embedded SQLite butler repository and processed by the ProcessCcd
# pipelines (isr -> calibrateImage) through processCcd.py / pipetask run; the
# VIRCAM visits (three bands: Z, Y, Ks) are warped onto a registered skymap
# and coadded cell by cell (DRP.yaml#step3); the coadds' objects are detected, merged,
# deblended and measured (DRP.yaml#objects) and measured on every visit
# (DRP.yaml#step4: light curves); then a report (table and figures, coadds
# and objects against the simulator's truth included) is written to
# DEMO/report/index.html.
#
# Usage: bin/run_demo.sh [DEMO]   (default: demo; repo in DEMO/repo, data in DEMO/data)
# Environment: DEMO_JOBS (processes, default 2), DEMO_SIZE (VIRCAM detector side in
# pixels, default 2048), DEMO_DETECTORS (default 1,2,3), DEMO_PATCH_CELLS (inner cells
# a side of a skymap patch, default the skymap config's 20: fewer cells make smaller
# warps and coadds, but patch edges can then cut the field, giving more coadds).
# Every step is safe to repeat: ingest skips what is there, a processCcd.py
# run into an output chain that holds its results finds nothing to do (or
# resumes, after a stop), and a finished report is kept (delete DEMO/report to
# write it again).
set -euo pipefail
demo=${1:-demo}
repo=$demo/repo
data=$demo/data
jobs=${DEMO_JOBS:-2}
size=${DEMO_SIZE:-2048}
detectors=${DEMO_DETECTORS:-1,2,3}
skymap_options=()
if [ -n "${DEMO_PATCH_CELLS:-}" ]; then
    skymap_options=(-c "skyMap.discrete.tractBuilder.cells.numCellsPerPatchInner=$DEMO_PATCH_CELLS")
fi

start=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Create an embedded (SQLite) butler repository in $repo"
if [ -f "$repo/butler.yaml" ]; then
    echo "$repo already exists; reusing it."
else
    # A plain repository, as Rubin users make them: the first ingest adds the one
    # entry the pipelines need to its butler.yaml (a formatter for BackgroundMap).
    run butler create "$repo"
fi

step "Make synthetic VIRCAM pawprint stacks: two in Z half a detector apart, two in Y at the same pointings an hour later, one in Ks at the first pointing an hour after that (stars with 2MASS-like colours; PSF varying 10% to the corners; a third of the stars variable; truth in $data/vircam/truth/)"
if ls "$data"/vircam/*_st.fit >/dev/null 2>&1; then
    echo "$data/vircam already holds stacks; reusing them."
else
    # Stacks 0 and 2 of a tile's offset pattern overlap by half a detector: the
    # same stars at two epochs, for the repeatability figure.  Stacks 6 and 8
    # are the same offsets of the next tile: the second band of the coadds.
    # Stack 12, the first offset of the tile after, is the third band: alone it
    # touches the same patches as stacks 0 and 2, and one visit is enough for a
    # colour-colour diagram (the half of stack 2 beside stack 0 has no Ks).
    # Every call makes the same sky (same seed, --variables and --colours: each
    # star's magnitudes in Z, Y and Ks follow from its 2MASS-like J-H and H-Ks
    # through VIRCAM's colour terms); one call per band, a Python start-up each.
    sim=(python -m lsst.obs.vista.sim "$data/vircam" --size "$size" --detectors "$detectors"
        --seed 7 --psf-variation 0.1 --variables 0.3 --colours)
    run "${sim[@]}" --stacks 2 --index-step 2 --refcat "$data/gaia_synthetic.fits"
    run "${sim[@]}" --stacks 2 --index-step 2 --first-index 6 --filter Y
    run "${sim[@]}" --stacks 1 --first-index 12 --filter Ks
fi

step "Ingest the CASU stacks, confidence maps and catalogues, and the synthetic Gaia-like catalogue"
run butler ingest-casu "$repo" "$data/vircam" --transfer symlink --processes "$jobs"
run butler ingest-refcat "$repo" gaia_dr3 "$data/gaia_synthetic.fits"

step "Process the VIRCAM stacks: isr, then calibrateImage (background, detection, Piff PSF, measurement, WCS and zero point)"
run processCcd.py "$repo" --id instrument=VIRCAM -j "$jobs" -o u/demo/vircam

step "Coadd the VIRCAM visits on a skymap: register it, warp each visit onto its patches, coadd each patch and band cell by cell"
run butler register-skymap "$repo" -C config/skymap/discrete_example.py "${skymap_options[@]}"
# grep reads all of butler's output (not -q): a grep that stops at the first match can end
# butler with SIGPIPE, and under pipefail a found collection would then count as missing.
if butler query-collections "$repo" u/demo/coadd 2>/dev/null | grep u/demo/coadd >/dev/null; then
    echo "u/demo/coadd already exists; reusing it."
else
    run pipetask run -b "$repo" -i u/demo/vircam,skymaps -o u/demo/coadd -j "$jobs" --register-dataset-types \
        -p pipelines/VIRCAM/DRP.yaml#step3 -d "skymap='discrete_example' AND instrument='VIRCAM'"
fi

step "Objects of the coadds (detection, merge, deblending, measurement, forced photometry per band; object table), then forced photometry on every visit (light curves)"
# Separate runs into the same output, as Rubin runs its steps: in one graph
# the visits would restrict the coadd bands to theirs.  One query (a butler
# start-up costs seconds) says which outputs the collection holds: visit
# measurements are made only after the object table, so the answer holds for both.
held=$(butler query-datasets "$repo" 'object*' --collections u/demo/coadd 2>/dev/null || true)
for subset in objects step4; do
    if grep "^$([ $subset = objects ] && echo object || echo object_forced_source) .*discrete_example" \
        <<<"$held" >/dev/null; then
        echo "u/demo/coadd already holds the $subset outputs; reusing them."
    else
        run pipetask run -b "$repo" -i u/demo/coadd -o u/demo/coadd -j "$jobs" --register-dataset-types \
            -p "pipelines/VIRCAM/DRP.yaml#$subset" -d "skymap='discrete_example' AND instrument='VIRCAM'"
    fi
done

step "Ingest the real DECam CP instcal trios and the Gaia DR2 chunks of the Legacy Surveys' test cases"
run butler ingest-instcal "$repo" tests/data/decam_cp --transfer direct --processes "$jobs"
run butler ingest-refcat "$repo" gaia_dr2 tests/data/decam_cp/testcase4/reference/gaia-chunk-*.fits \
    tests/data/decam_cp/testcase6/reference/gaia-chunk-*.fits

step "Process the DECam CCDs against gaia_dr2 (the reference catalogue is a connection name: a config option)"
run processCcd.py "$repo" --id instrument=DECam -j "$jobs" -o u/demo/decam \
    -i DECam/defaults,refcats/gaia_dr2 -c connections.astrometry_ref_cat=gaia_dr2

step "What isr measured: noise ratio (background noise / predicted sigma), rescale, zero point, masks"
run butler summarize-isr "$repo" --collections u/demo/vircam,u/demo/decam

step "Report: per-detector table, image/mask/variance panels, PSF models, residual and repeatability histograms, coadds, objects against the simulator's truth"
if [ -f "$demo/report/index.html" ]; then
    # index.html is the last file make-report writes: the report is complete.
    echo "$demo/report already exists; reusing it (delete it to write the report again)."
else
    run butler make-report "$repo" --collections u/demo/vircam,u/demo/decam,u/demo/coadd -o "$demo/report" \
        --truth "$data/vircam/truth"
fi

step "Export one exposure in the afw Exposure FITS layout (for users of the full Rubin stack)"
run butler export-legacy "$repo" "$data/legacy" --collections u/demo/vircam \
    --where "instrument='VIRCAM' AND detector=1" --overwrite

printf '\nDone in %ds.  Open %s/report/index.html (numbers in %s/report/summary.json)\n' \
    "$((SECONDS - start))" "$demo" "$demo"
