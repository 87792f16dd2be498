#!/usr/bin/env bash
# The project's one test command (README.md, "Run every test"; .ci/run calls exactly this).
# As root on a fresh Debian 12 machine: installs what the tests need, then checks formatting and
# lints, and runs every test, including the end-to-end lab in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "run-all.sh: the lab needs root (network namespaces, nftables, daemons); run it as root" >&2
    exit 2
fi

step "install test dependencies"
./tests/install-deps.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --locked

step "tests (unit, integration, end-to-end lab)"
# The lab tests start real daemons in namespaces and serialise themselves.
cargo test --workspace --locked

step "windows leg (cross-build for x86_64-pc-windows-gnu, tests and the MSI under Wine)"
./tests/windows-leg.sh

step "fuzz targets (each runs for a short time)"
# Every parser of user-controlled bytes has a cargo-fuzz target; a crash fails the run.
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" ./tests/fuzz.sh

step "done"
