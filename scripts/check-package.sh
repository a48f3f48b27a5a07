#!/usr/bin/env bash
# Packages the publishable crates (`cargo package`: each is built from its own .crate tarball),
# then builds, outside the workspace, a program that depends on the packaged crates the way a
# user's would (`llamactl-core = "0.1.0"`, served from the unpacked tarballs through
# `[patch.crates-io]`), whose body is the README's "Using the library" example, taken from
# README.md as it is with only the model path replaced. It runs against a real SQLite file and
# the provisioned llama-server, and the program then re-opens the file and checks that the
# instance was saved in it.
#
#   scripts/check-package.sh    (after scripts/backends/provision.sh llama; .ci/run orders it so)
#
# Offline: every dependency is already in cargo's cache (the workspace's Cargo.lock pins them).
# The program's builds go to ~/.cache/llamactl-package-target, so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
program_target=${LLAMACTL_PACKAGE_TARGET:-$HOME/.cache/llamactl-package-target}
backends=${LLAMACTL_BACKENDS_DIR:-$HOME/.cache/llamactl-backends}
# shellcheck disable=SC1091
source "$backends/env.sh"

# The tests crate and the fuzz targets are not published (publish = false / their own workspace).
allow_dirty=()
if [ "${CI:-}" != true ]; then allow_dirty=(--allow-dirty); fi
# Verification builds each .crate with the crates packaged before it taken from a temporary
# registry, as crates.io crates. Cargo fingerprints a registry crate by name and version only,
# so builds left by an earlier run (same version, older code) would be taken for them: in the
# target folder, in target/package (with its temporary registry) and unpacked in cargo's
# registry cache. Packaging therefore builds in a target folder of its own, from which our
# crates' builds are removed first (their dependencies' builds stay, so a second run is fast).
export CARGO_TARGET_DIR=${LLAMACTL_PACKAGE_VERIFY_TARGET:-$HOME/.cache/llamactl-package-verify-target}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$CARGO_TARGET_DIR/package"
for profile_dir in "$CARGO_TARGET_DIR"/debug "$CARGO_TARGET_DIR"/release; do
  rm -rf "$profile_dir"/.fingerprint/llamactl* "$profile_dir"/deps/*llamactl* "$profile_dir"/build/llamactl*
done
rm -rf "$cargo_home"/registry/src/*/llamactl-* "$cargo_home"/registry/cache/*/llamactl-*
cargo package --workspace --exclude llamactl-tests --locked --offline "${allow_dirty[@]}"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
work=$(mktemp -d "${TMPDIR:-/tmp}/llamactl-package-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/crates" "$work/program/src" "$work/bin" "$work/run"
# In dependency order: llamactl-core depends on llamactl-wire.
for crate in llamactl-wire llamactl-core; do
  tar -xzf "$CARGO_TARGET_DIR/package/$crate-$version.crate" -C "$work/crates"
done

cat >"$work/program/Cargo.toml" <<EOF
[package]
name = "uses-llamactl"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
llamactl-core = "$version"
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

[patch.crates-io]
llamactl-wire = { path = "../crates/llamactl-wire-$version" }
llamactl-core = { path = "../crates/llamactl-core-$version" }

[workspace]
EOF
# Same versions of every dependency as the workspace (and so all in the local cache).
cp Cargo.lock "$work/program/Cargo.lock"

# The README's example, verbatim but for the model file.
example=$(awk '/^## Using the library/ { in_section = 1 } in_section && /^```rust/ { in_code = 1; next }
  in_code && /^```/ { exit } in_code { print }' README.md)
if [ -z "$example" ]; then
  echo "check-package: no rust example under \"## Using the library\" in README.md" >&2
  exit 1
fi
{
  printf '%s\n' "${example//\/models\/q.gguf/$LLAMACTL_TEST_GGUF}"
  cat <<'EOF'

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await?;
    // The instance the example created is in the SQLite file: open it again and load it.
    let db = SqliteDatabase::open("llamactl.db").await?;
    let stored = db.get("qwen").await?.ok_or("instance qwen is not in llamactl.db")?;
    let json = stored.options?.to_json_value();
    println!("stored in llamactl.db: {} ({}, model {})", stored.name, json["backend_type"], json["backend_options"]["model"]);
    Ok(())
}
EOF
} >"$work/program/src/main.rs"

# The example's ManagerConfig::default() runs `llama-server` from PATH.
ln -s "$LLAMACTL_TEST_LLAMA_SERVER" "$work/bin/llama-server"
(cd "$work/program" && CARGO_TARGET_DIR=$program_target cargo build --offline)
output=$(cd "$work/run" && PATH="$work/bin:$PATH" "$program_target/debug/uses-llamactl")
printf '%s\n' "$output"
grep -q '^send requests to http://' <<<"$output"
grep -qF "stored in llamactl.db: qwen (\"llama_cpp\", model \"$LLAMACTL_TEST_GGUF\")" <<<"$output"
[ -s "$work/run/llamactl.db" ]
echo "check-package: the packaged crates build on their own and run the README's example ($root)"
