#!/usr/bin/env bash
# Writes a screenshot of each dashboard page (and a dark and a phone one) to docs/screenshots/
# (or the folder given), against a real server with a real llama-server instance. Provisions
# llama-server and Chromium first (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/llamactl-target}
export LLAMACTL_BACKENDS_DIR=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}
scripts/backends/provision.sh llama browser >/dev/null
# shellcheck disable=SC1091
source "$LLAMACTL_BACKENDS_DIR/env.sh"
out=${1:-docs/screenshots}
cargo build --release --locked -p llamactl-server -p llamactl-tests --bin llamactl-server --bin llamactl-screenshots
"$CARGO_TARGET_DIR/release/llamactl-screenshots" "$out"
