#!/bin/sh
# Start the Ferry workers of topic group clicks (deployment prod) and enable them at boot.
# Rendered by "ferry render": change the topic group or cluster definitions and render again.
# Usage: start-clicks.sh [COUNT]   instances ferry-worker-clicks@1 .. @COUNT (default 4)
# SYSTEMCTL overrides the systemctl command.
set -eu

count="${1:-4}"
case "$count" in
  ''|*[!0-9]*|0*) echo "start-clicks.sh: COUNT must be a whole number from 1 up, got '$count'" >&2; exit 2 ;;
esac
systemctl="${SYSTEMCTL:-systemctl}"

# Link the unit when systemd does not know it yet; reload either way, since a new render may have changed it.
if ! $systemctl cat 'ferry-worker-clicks@.service' >/dev/null 2>&1; then
  $systemctl link '/opt/ferry/config/systemd/ferry-worker-clicks@.service'
fi
$systemctl daemon-reload

units=''
i=1
while [ "$i" -le "$count" ]; do
  units="$units ferry-worker-clicks@$i.service"
  i=$((i + 1))
done
# enable --now: start them now and again after a reboot.
$systemctl enable --now $units
echo "start-clicks.sh: started$units"
