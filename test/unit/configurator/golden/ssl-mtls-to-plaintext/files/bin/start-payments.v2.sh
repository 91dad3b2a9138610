#!/bin/sh
# Start the Ferry workers of topic group payments.v2 (deployment prod-eu) and enable them at boot.
# Rendered by "ferry render": change the topic group or cluster definitions and render again.
# Usage: start-payments.v2.sh [COUNT]   instances ferry-worker-payments.v2@1 .. @COUNT (default 3)
# SYSTEMCTL overrides the systemctl command.
set -eu

count="${1:-3}"
case "$count" in
  ''|*[!0-9]*|0*) echo "start-payments.v2.sh: COUNT must be a whole number from 1 up, got '$count'" >&2; exit 2 ;;
esac
systemctl="${SYSTEMCTL:-systemctl}"

# Link the unit when systemd does not know it yet; reload either way, since a new render may have changed it.
if ! $systemctl cat 'ferry-worker-payments.v2@.service' >/dev/null 2>&1; then
  $systemctl link '/etc/ferry/systemd/ferry-worker-payments.v2@.service'
fi
$systemctl daemon-reload

units=''
i=1
while [ "$i" -le "$count" ]; do
  units="$units ferry-worker-payments.v2@$i.service"
  i=$((i + 1))
done
# enable --now: start them now and again after a reboot.
$systemctl enable --now $units
echo "start-payments.v2.sh: started$units"
