#!/usr/bin/env bash
# Runs a benchmark and prints its figures (nothing is asserted about time).
#   scripts/bench.sh readiness [llama-server|test-backend|python-keepalive|container]   readiness detection lag and start overhead
#   scripts/bench.sh proxy [fixed|llama-server|keys|soak]     proxy throughput (direct / nginx / llamactl), CPU per request,
#                                                             latency, streaming, cold start, key checks;
#                                                             soak: 60 s at concurrency 256 (LLAMACTL_BENCH_SOAK_SECONDS)
#   scripts/bench.sh activity                                 the cost of recording requests (on vs off at c=64),
#                                                             records sustained without drops, database bytes per 100,000
#   scripts/bench.sh adoption [boot|server]                   takeover of running backends after a kill -9 of the manager
#   scripts/bench.sh scale                                    10,000 instances: creates/s, list latency, boot, memory
#   scripts/bench.sh supervision                              200 running backends: idle CPU, memory, detection lags
#   scripts/bench.sh memory                                   live heap per idle instance in the library (10,000)
#   scripts/bench.sh connections                              the server's memory per idle connection (2,000 open;
#                                                             LLAMACTL_BENCH_CONNECTIONS; LLAMACTL_BENCH_SERVER: another build)
#   scripts/bench.sh dashboard                                the dashboard in Chromium: first-load bytes, 1,000-instance
#                                                             table render, status change to row (Performance API)
# LLAMACTL_BENCH_ITERATIONS (readiness rounds, default 20), LLAMACTL_BENCH_SECONDS (per load measurement, default 3;
# the proxy benchmark splits it into LLAMACTL_BENCH_ROUNDS interleaved rounds, default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/llamactl-target}
export LLAMACTL_BACKENDS_DIR=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}
if [ "${1:-}" = dashboard ]; then scripts/backends/provision.sh llama browser; else scripts/backends/provision.sh llama; fi
# shellcheck disable=SC1091
source "$LLAMACTL_BACKENDS_DIR/env.sh"
bench=${1:-readiness}
shift || true
# The proxy benchmark compares with nginx (Debian's package), run as its own process.
if [ "$bench" = proxy ] && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >/dev/null ||
            echo "bench.sh: cannot install nginx-light; the proxy benchmark runs without nginx" >&2
    elif command -v sudo >/dev/null; then
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >/dev/null ||
            echo "bench.sh: cannot install nginx-light; the proxy benchmark runs without nginx" >&2
    else
        echo "bench.sh: nginx is not installed (apt-get install nginx-light); the proxy benchmark runs without it" >&2
    fi
fi
# Benchmarks that run the real server need its release binary.
cargo build --release --locked -p llamactl-server
exec cargo bench --locked -p llamactl-tests --bench "$bench" -- "$@"
