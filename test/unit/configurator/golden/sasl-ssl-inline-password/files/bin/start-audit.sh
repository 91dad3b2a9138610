#!/bin/sh
# Start the Ferry workers of topic group audit (deployment staging) and enable them at boot.
# Rendered by "ferry render": change the topic group or cluster definitions and render again.
# Usage: start-audit.sh [COUNT]   instances ferry-worker-audit@1 .. @COUNT (default 2)
# SYSTEMCTL overrides the systemctl command.
set -eu

count="${1:-2}"
case "$count" in
  ''|*[!0-9]*|0*) echo "start-audit.sh: COUNT must be a whole number from 1 up, got '$count'" >&2; exit 2 ;;
esac
systemctl="${SYSTEMCTL:-systemctl}"

# Link the unit when systemd does not know it yet; reload either way, since a new render may have changed it.
if ! $systemctl cat 'ferry-worker-audit@.service' >/dev/null 2>&1; then
  $systemctl link '/etc/ferry/systemd/ferry-worker-audit@.service'
fi
$systemctl daemon-reload

units=''
i=1
while [ "$i" -le "$count" ]; do
  units="$units ferry-worker-audit@$i.service"
  i=$((i + 1))
done
# enable --now: start them now and again after a reboot.
$systemctl enable --now $units
echo "start-audit.sh: started$units"
