#!/usr/bin/env bash
# Run the test suite (the same command CI runs). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec python -m pytest -n 2 --dist loadfile "$@"
