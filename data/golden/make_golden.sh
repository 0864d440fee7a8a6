#!/usr/bin/env bash
# Regenerate the shipped golden files (run from anywhere after a change that is meant to change
# results; review the diff of the summaries before committing).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf device_softbounds program_small program_fp toy_constant_gradient estimate
analogtrain device --preset softbounds --devices 16 --cycles 1 --random-pulses 2000 --out device_softbounds >/dev/null
analogtrain program --algorithm ttv2,c-ttv2,agad,mp,sgd --n-states 20 --sigma-r 0,0.3 --seeds 1 --steps 200 \
    --size 8 --count-pulses --no-progress --out program_small >/dev/null
analogtrain program --algorithm fp --n-states 20 --sigma-r 0 --seeds 1 --steps 200 --size 8 --no-progress \
    --out program_fp >/dev/null
analogtrain program --task constant-gradient --steps 300 --out toy_constant_gradient >/dev/null
mkdir -p estimate && analogtrain estimate --json > estimate/estimate.json
echo "golden files written"
