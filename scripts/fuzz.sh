#!/usr/bin/env bash
# The test suite's opt-in fuzz mode: runs every cargo-fuzz target of fuzz/ for a bounded time.
#
#   scripts/fuzz.sh                 every target for LLAMACTL_FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh config_file     one target
#
# Stable Rust: libFuzzer's coverage instrumentation without a sanitizer (`--sanitizer none`;
# the sanitizers need a nightly compiler). cargo-fuzz is installed once into ~/.cargo/bin.
# Corpora stay in fuzz/corpus/<target> (not committed); a crash leaves its input in
# fuzz/artifacts/<target> and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${LLAMACTL_FUZZ_TARGET_DIR:-$HOME/.cache/llamactl-fuzz-target}
seconds=${LLAMACTL_FUZZ_SECONDS:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
