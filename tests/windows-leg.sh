#!/usr/bin/env bash
# The Windows leg of the test command: cross-builds the whole agent for x86_64-pc-windows-gnu
# and runs the tests that mean something on Windows under Wine, in a throw-away Wine prefix.
#
# Run as root on Debian 12 (tests/run-all.sh calls it). Installs what it needs when missing:
# gcc-mingw-w64-x86-64, wine, wine64, wixl, msitools (Debian) and the rustup target
# x86_64-pc-windows-gnu. Steps: the ProcessPrng shim, a fresh Wine prefix in /tmp, the cross
# build of the workspace, clippy for the Windows cfgs, the tests under Wine (including the
# service under Wine's service control manager), and the MSI built with wixl, installed and
# uninstalled with Wine's msiexec. Fails on the first failing step; always kills the prefix's
# wineserver and removes the prefix.
#
# What runs under Wine, and what does not and why, is listed in RUN_UNDER_WINE below and in
# ARCHITECTURE.md ("Not built or not testable here yet").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=x86_64-pc-windows-gnu
leg_start=$SECONDS

say() { printf '\n--- windows leg: %s (%ss)\n' "$*" "$((SECONDS - leg_start))"; }

# --- what the leg needs -------------------------------------------------------------------
need=""
for p in gcc-mingw-w64-x86-64 wine wine64 wixl msitools; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        need="$need $p"
    fi
done
if [ -n "$need" ]; then
    say "installing:$need"
    if [ "$(id -u)" -ne 0 ]; then
        echo "windows-leg.sh: missing packages:$need (run as root to install them)" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    say "adding the rustup target $TARGET"
    rustup target add "$TARGET"
fi
WINE=/usr/lib/wine/wine64 # not on PATH in Debian 12; `wine` would pick the 32-bit loader
for tool in "$WINE" x86_64-w64-mingw32-gcc wineserver wixl msiinfo; do
    command -v "$tool" >/dev/null || {
        echo "windows-leg.sh: $tool not found after installing" >&2
        exit 2
    }
done

# --- a fresh Wine prefix, always removed ----------------------------------------------------
WORK=$(mktemp -d /tmp/mailmend-winleg.XXXXXX)
export WINEPREFIX="$WORK/prefix"
cleanup() {
    local rc=$?
    # Ends this prefix's wineserver (and services.exe and the services it runs), nothing else.
    if [ -d "$WINEPREFIX" ]; then
        wineserver -k 2>/dev/null || true
        wineserver -w 2>/dev/null || true
    fi
    rm -rf "$WORK"
    if [ "$rc" -ne 0 ]; then
        echo "windows leg FAILED (exit $rc) after $((SECONDS - leg_start))s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT INT TERM
trap 'echo "windows-leg.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR

# Quiet Wine; no Mono or Gecko installer prompts (no .NET or HTML is used).
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree=;mshtml="

say "building the ProcessPrng shim"
SHIM="$WORK/bcryptprimitives.dll"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -o "$SHIM" \
    tests/windows/processprng.c tests/windows/processprng.def -lbcrypt

say "creating the Wine prefix $WINEPREFIX"
mkdir -p "$WINEPREFIX"
"$WINE" wineboot --init >/dev/null 2>&1
# Creating a prefix leaves two services.exe running, two service control managers that each
# answer some calls (a service created through one is missing from the other): restart the
# session so that one runs. Keep the new wineserver up between commands (-p): when it exits on
# its own, a few seconds after the last ordinary process, it kills the services it runs
# without a Stop control, which would look like an agent that does not stop gracefully. The
# session's system processes are started with output to /dev/null, so that none of them holds
# the output of a later command open.
wineserver -k
wineserver -w
wineserver -p
"$WINE" wineboot >/dev/null 2>&1
WINE_SYS32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$WINE_SYS32" ] || {
    echo "windows-leg.sh: wineboot made no system32 in $WINEPREFIX" >&2
    exit 1
}
# Debian 12's Wine 8.0 has no ProcessPrng, which every Rust program imports (see
# tests/windows/processprng.c); without the shim every test binary exits 53 silently.
cp "$SHIM" "$WINE_SYS32/bcryptprimitives.dll"

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

say "cross-building the workspace for $TARGET"
# mailmend-lab drives Linux network namespaces and daemons: it has no Windows meaning.
cargo build --locked --target "$TARGET" --workspace --exclude mailmend-lab

say "clippy for $TARGET (the cfg(windows) code paths)"
cargo clippy --locked --target "$TARGET" --workspace --exclude mailmend-lab --all-targets \
    -- -D warnings

# Every crate whose tests mean something on Windows. Not here, on purpose:
# - mailmend-lab: Linux network namespaces, nftables and Linux daemons.
# - mailmend-probe: its one test binary mixes loopback TLS/TCP servers with Kerberos (MIT kinit,
#   a KDC), lab DNS and nftables tests that need Linux programs; the prober is cross-built and
#   clippy-checked above, its tests are not run under Wine.
# - the test helper crates (plugins/testkit) and the example plugin: built above, no tests of
#   their own that mean something on Windows.
# Tests inside these crates that cannot work under Wine are excluded where they are defined,
# with a cfg and a comment saying why.
RUN_UNDER_WINE=(
    mailmend-core
    mailmend-policy
    mailmend-audit
    mailmend-executor
    mailmend-plugin-host
    mailmend-plugin-sdk
    mailmend-clientkit
    mailmend-thunderbird
    mailmend-msmtp
    mailmend-mbsync
    mailmend-mutt
    mailmend-aerc
    mailmend-evolution
    mailmend-diagnostics
    mailmend
)
# Crates other helpers add for Windows: run when they exist in the workspace.
for extra in mailmend-outlook mailmend-actions; do
    if cargo metadata --locked --no-deps --format-version 1 | grep -q "\"name\":\"$extra\""; then
        RUN_UNDER_WINE+=("$extra")
    fi
done

say "tests under Wine: ${RUN_UNDER_WINE[*]}"
args=()
for c in "${RUN_UNDER_WINE[@]}"; do args+=(-p "$c"); done
# --no-fail-fast: every failing test binary is reported, and cargo still exits non-zero.
cargo test --locked --no-fail-fast --target "$TARGET" "${args[@]}"

say "the MSI: built with wixl, installed and uninstalled with Wine's msiexec"
bash installer/windows/build-msi.sh "$TARGET_DIR/$TARGET/debug" "$WORK/mailmend.msi"
bash tests/windows/msi-under-wine.sh "$WINE" "$WORK/mailmend.msi"

say "passed"
