#!/usr/bin/env bash
# Builds and runs llamactl-server on its defaults: http://127.0.0.1:8080, an SQLite database and
# logs under ~/.local/share/llamactl, instance ports 8000-9000. Arguments are passed on
# (see `--help`); LLAMACTL_* environment variables work too.
#
# llama-server, mlx_lm.server and vllm are looked up on PATH unless configured
# (--llamacpp-command, LLAMACTL_LLAMACPP_COMMAND, ...). If scripts/backends/provision.sh has
# built a llama-server and nothing else is configured, that one is used; without any it says how
# to get one. The server prints the dashboard's address and the management key to sign in with.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/llamactl-target}
env_file=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}/env.sh
if [ -z "${LLAMACTL_LLAMACPP_COMMAND:-}" ] && ! command -v llama-server >/dev/null && [ -f "$env_file" ]; then
  # shellcheck disable=SC1090
  source "$env_file"
  export LLAMACTL_LLAMACPP_COMMAND=${LLAMACTL_TEST_LLAMA_SERVER:-}
  [ -n "$LLAMACTL_LLAMACPP_COMMAND" ] || unset LLAMACTL_LLAMACPP_COMMAND
fi
if [ -z "${LLAMACTL_LLAMACPP_COMMAND:-}" ] && ! command -v llama-server >/dev/null; then
  echo "run-server.sh: no llama-server on PATH: llama.cpp instances cannot start until there is one." >&2
  echo "  scripts/backends/provision.sh llama  builds it from source with a tiny test model (about 5 minutes," >&2
  echo "  cached); run this script again afterwards and it is used. Or set LLAMACTL_LLAMACPP_COMMAND to yours." >&2
elif [ -n "${LLAMACTL_TEST_GGUF:-}" ]; then
  echo "run-server.sh: llama-server: $LLAMACTL_LLAMACPP_COMMAND; a tiny model to try: $LLAMACTL_TEST_GGUF" >&2
fi
exec cargo run --release --locked -p llamactl-server -- "$@"
