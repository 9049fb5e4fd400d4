#!/usr/bin/env bash
# The main job on the bundled demo model: export it to an exact hls4ml project, build the C-sim
# with g++, and print the golden parity table (C-sim vs QKeras, raw words). Output in demo_out/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
OUT="${1:-$ROOT/demo_out}"
DATA="$ROOT/fkhls/data"
fkhls export "$DATA/demo_model.h5" -o "$OUT/project" --force
fkhls verify "$OUT/project" --inputs "$DATA/demo_inputs.npy"
