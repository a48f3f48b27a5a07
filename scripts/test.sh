#!/usr/bin/env bash
# Sets up everything the tests need and runs the whole test suite.
#
#   scripts/test.sh                      llama.cpp + mlx_lm backends, API clients and Chromium
#                                        (built/installed once, cached)
#   LLAMACTL_TEST_VLLM=1 scripts/test.sh also vLLM (heavy: about 6 GB, several minutes the first time)
#
# A running Docker engine is required (the Docker runtime's tests).
#
# Real backends are provisioned into ~/.cache/llamactl-backends (LLAMACTL_BACKENDS_DIR), Rust
# builds go to ~/.cache/llamactl-target (CARGO_TARGET_DIR), so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/llamactl-target}
export LLAMACTL_BACKENDS_DIR=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}

with_vllm=${LLAMACTL_TEST_VLLM:-0}
steps="llama mlx clients browser"
if [ "$with_vllm" = 1 ]; then steps="$steps vllm"; fi
# shellcheck disable=SC2086
scripts/backends/provision.sh $steps
# shellcheck disable=SC1091
source "$LLAMACTL_BACKENDS_DIR/env.sh"

# The Docker runtime's tests run containers on the local engine (images are built from files
# of this machine; nothing is pulled).
docker_socket=${DOCKER_HOST:-unix:///var/run/docker.sock}
if [[ "$docker_socket" == unix://* ]] && [ ! -S "${docker_socket#unix://}" ]; then
  echo "scripts/test.sh: no Docker engine at $docker_socket; the Docker runtime's tests need one" \
    "(install docker.io and start it, or set DOCKER_HOST)" >&2
  exit 1
fi

# Some tests run the real server binary: build every binary first.
cargo build --workspace --bins --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked
  if [ "$with_vllm" = 1 ]; then
    cargo nextest run -p llamactl-tests --locked --run-ignored only -E 'test(vllm)'
  fi
else
  cargo test --workspace --locked
  if [ "$with_vllm" = 1 ]; then
    cargo test -p llamactl-tests --locked --test vllm_lifecycle -- --ignored
  fi
fi
# nextest does not run documentation examples.
echo "scripts/test.sh: documentation examples"
cargo test --workspace --locked --doc
