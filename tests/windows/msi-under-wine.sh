#!/usr/bin/env bash
# Installs installer/windows' MSI with Wine's msiexec in the leg's prefix and checks what a
# person would: the service is registered and running, the agent wrote "agent started" to its
# audit log, the Event Log source is registered; then uninstalls it and checks that the service
# stopped gracefully ("agent stopped"), that `mailmend uninstall` ran to remove the agent's
# firewall rules, and that the service, the files and the source are gone.
# Usage: msi-under-wine.sh WINE MSI  (WINEPREFIX set, wineserver kept alive with -p)
set -euo pipefail
wine=$1
msi=$2
src_key='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\mailmend'
fail() { echo "msi-under-wine: $*" >&2; exit 1; }

winpath=$("$wine" winepath -w "$msi" 2>/dev/null | tr -d '\r')
"$wine" msiexec /i "$winpath" /qn || fail "msiexec /i failed"

running=no
for _ in $(seq 1 100); do
    if "$wine" sc query mailmend 2>/dev/null | grep -q 'RUNNING'; then running=yes; break; fi
    sleep 0.3
done
[ "$running" = yes ] || fail "the installed service is not running"
"$wine" reg query "$src_key" 2>/dev/null | grep -q 'EventCreate.exe' \
    || fail "the Event Log source is not registered"
[ -f "$WINEPREFIX/drive_c/Program Files/mailmend/default-policy.toml" ] \
    || fail "the default policy is not installed"

# The service's state directory is %ProgramData%\mailmend\state, wherever Wine puts ProgramData.
audit=""
for _ in $(seq 1 100); do
    audit=$(find "$WINEPREFIX/drive_c" -path '*/mailmend/state/audit/audit.jsonl' 2>/dev/null | head -n1)
    if [ -n "$audit" ] && grep -q 'agent started' "$audit"; then break; fi
    sleep 0.3
done
[ -n "$audit" ] && grep -q 'agent started' "$audit" || fail "the service did not start the agent"
starts=$(grep -c 'agent started' "$audit")

"$wine" msiexec /x "$winpath" /qn || fail "msiexec /x failed"
if "$wine" sc query mailmend >/dev/null 2>&1; then fail "the service is still registered"; fi
"$wine" reg query "$src_key" >/dev/null 2>&1 && fail "the Event Log source is still registered"
[ ! -e "$WINEPREFIX/drive_c/Program Files/mailmend/mailmend.exe" ] || fail "mailmend.exe is still installed"
[ "$(grep -c 'agent started' "$audit")" = "$starts" ] || fail "uninstalling started the agent again"
tail -n2 "$audit" | head -n1 | grep -q 'agent stopped' \
    || fail "the uninstall did not stop the agent gracefully: $(tail -n2 "$audit")"
# Then the MSI's custom action ran `mailmend uninstall` (after the stop, before the files went):
# it audits what it did with the firewall rules (Wine has no Windows Firewall API, so here it
# says it could not list them; on Windows it says how many it removed).
tail -n1 "$audit" | grep -q 'firewall rule' \
    || fail "the uninstall did not run mailmend uninstall: $(tail -n1 "$audit")"
echo "msi-under-wine: installed, ran, stopped gracefully, removed its changes and uninstalled"
