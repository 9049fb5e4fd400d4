#!/usr/bin/env bash
# The main job on the bundled demo model (jet-tagging-shaped QKeras MLP 16-64-32-32-5):
#   1. export it to an exact hls4ml project and prove golden parity (C-sim vs QKeras, raw words);
#   2. map the example FKeras fault descriptors to hardware bits, and cross-check every scenario
#      (exact TF bit-flip emulation vs C-sim);
#   3. run the exhaustive single-bit campaign (26,334 faults x 1000 inputs) through both engines.
# Everything lands in demo_out/ (or the directory given as the first argument); reruns replace it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
OUT="${1:-$ROOT/demo_out}"
DATA="$ROOT/fkhls/data"
mkdir -p "$OUT"
echo "== 1. export + golden parity"
fkhls export "$DATA/demo_model.h5" -o "$OUT/project" --force
fkhls verify "$OUT/project" --inputs "$DATA/demo_inputs.npy"
echo "== 2. fault map + cross-check of examples/faults.json"
fkhls faultmap "$OUT/project" --faults "$ROOT/examples/faults.json" -o "$OUT/faultmap.csv" --force
fkhls crosscheck "$OUT/project" --faults "$ROOT/examples/faults.json" --inputs "$DATA/demo_inputs.npy" \
  --report "$OUT/crosscheck" --force
echo "== 3. exhaustive single-bit campaign, both engines"
fkhls campaign "$OUT/project" --inputs "$DATA/demo_inputs.npy" --labels "$DATA/demo_labels.npy" \
  --exhaustive --engine both -o "$OUT/campaign" --force
echo "done: see $OUT/crosscheck/report.md and $OUT/campaign/report.md (heatmap.png)"
