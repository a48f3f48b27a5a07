#!/usr/bin/env bash
# Runs a benchmark and prints its figures (nothing is asserted about time).
#   scripts/bench.sh readiness     readiness detection lag and start overhead (llama-server, test backend)
# LLAMACTL_BENCH_ITERATIONS sets the number of rounds (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/llamactl-target}
export LLAMACTL_BACKENDS_DIR=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}
scripts/backends/provision.sh llama
# shellcheck disable=SC1091
source "$LLAMACTL_BACKENDS_DIR/env.sh"
bench=${1:-readiness}
shift || true
exec cargo bench --locked -p llamactl-tests --bench "$bench" -- "$@"
