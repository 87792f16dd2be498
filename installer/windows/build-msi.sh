#!/usr/bin/env bash
# Builds mailmend.msi from mailmend.wxs with wixl (Debian package wixl) and checks that the MSI
# holds the binary, the default policy and the service registration.
# Usage: build-msi.sh BIN_DIR OUT.msi   (BIN_DIR holds mailmend.exe built for x86_64-pc-windows-gnu)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin_dir=$1
out=$2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
# wixl resolves File sources relative to the working directory: stage them.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/mailmend.exe" "$stage/mailmend.exe"
cp "$root/policies/default.toml" "$stage/default-policy.toml"
cp "$here/mailmend.wxs" "$stage/"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$stage" && wixl -a x64 -D Version="$version" -o "$out_abs" mailmend.wxs)
out=$out_abs
# The tables an MSI needs to install and register the service.
tables=$(msiinfo tables "$out")
for t in File ServiceInstall ServiceControl Registry; do
    grep -qx "$t" <<<"$tables" || { echo "build-msi.sh: $out has no $t table" >&2; exit 1; }
done
msiinfo export "$out" ServiceInstall | grep -q $'\tmailmend\t' || {
    echo "build-msi.sh: the ServiceInstall table does not register mailmend" >&2
    exit 1
}
files=$(msiinfo export "$out" File)
for f in mailmend.exe default-policy.toml; do
    grep -q "$f" <<<"$files" || { echo "build-msi.sh: $f is not in $out" >&2; exit 1; }
done
echo "built $out ($(du -h "$out" | cut -f1))"
