#!/usr/bin/env bash
# Builds every cargo-fuzz target of the workspace and runs each one for a short time.
#
# Called by tests/run-all.sh. Every parser of user-controlled bytes (prefs.js, .source, rc files,
# .reg exports, the policy TOML, server replies) has a target under <crate>/fuzz; this script
# finds them all, so a new target is run without editing this file.
#
#   FUZZ_SECONDS   how long each target runs (default 15)
#   FUZZ_ONLY      run only the fuzz crates whose directory contains this string
#
# A crash or a timeout fails the script; libFuzzer's reproducer is copied to
# target/fuzz-artifacts/<target>/ and the command that replays it is printed.
# The stable toolchain runs cargo-fuzz with RUSTC_BOOTSTRAP=1, which enables the nightly flags
# (sanitizer coverage) that libFuzzer needs; no nightly toolchain is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
CARGO_FUZZ_VERSION="0.13.2"

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
# One target directory for every fuzz crate, so the instrumented dependencies they share
# (serde, tokio, rustls, the workspace crates) are built once.
export CARGO_TARGET_DIR="$PWD/target/fuzz"
work="$(mktemp -d /tmp/mailmend-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

failed=0
ran=0
for dir in $(find agent plugins -path '*/fuzz/Cargo.toml' -not -path '*/target/*' | sort); do
    fuzz_dir="$(dirname "$dir")"
    crate_dir="$(dirname "$fuzz_dir")"
    if [ -n "${FUZZ_ONLY:-}" ] && [[ "$crate_dir" != *"$FUZZ_ONLY"* ]]; then
        continue
    fi
    # --sanitizer none: the parsers are safe Rust, so AddressSanitizer finds nothing the
    # coverage-guided run with debug assertions does not, and it doubles build and run time.
    build_log="$work/build-$(echo "$crate_dir" | tr / -).log"
    if ! (cd "$crate_dir" && cargo fuzz build --sanitizer none --debug-assertions -O) >"$build_log" 2>&1; then
        echo "fuzz.sh: building the fuzz targets of $crate_dir failed:"
        tail -n 60 "$build_log"
        exit 1
    fi
    for target_file in "$fuzz_dir"/fuzz_targets/*.rs; do
        target="$(basename "$target_file" .rs)"
        corpus="$work/$target"
        mkdir -p "$corpus"
        seeds=()
        if [ -d "$fuzz_dir/seeds/$target" ]; then
            seeds=("$PWD/$fuzz_dir/seeds/$target")
        fi
        artifacts="$PWD/target/fuzz-artifacts/$target/"
        mkdir -p "$artifacts"
        printf 'fuzz.sh: %-28s %s s ... ' "$target" "$FUZZ_SECONDS"
        log="$work/$target.log"
        if (cd "$crate_dir" && cargo fuzz run --sanitizer none --debug-assertions -O "$target" \
            "$corpus" "${seeds[@]}" -- -max_total_time="$FUZZ_SECONDS" -timeout=10 \
            -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1) \
            >"$log" 2>&1; then
            runs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
            echo "ok (${runs:-?} runs)"
        else
            echo "FAILED"
            tail -n 40 "$log"
            echo "fuzz.sh: replay with: (cd $crate_dir && RUSTC_BOOTSTRAP=1 cargo fuzz run $target $artifacts<file>)"
            failed=$((failed + 1))
        fi
        ran=$((ran + 1))
    done
done

if [ "$ran" -eq 0 ]; then
    echo "fuzz.sh: no fuzz target found" >&2
    exit 1
fi
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: $failed of $ran targets failed" >&2
    exit 1
fi
echo "fuzz.sh: all $ran targets ran without a crash"
