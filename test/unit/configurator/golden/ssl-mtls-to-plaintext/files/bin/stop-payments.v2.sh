#!/bin/sh
# Stop every Ferry worker of topic group payments.v2 (deployment prod-eu) and disable them at boot.
# Rendered by "ferry render": change the topic group or cluster definitions and render again.
# Usage: stop-payments.v2.sh
# Stops all instances, not only 1..COUNT of the last start: instances started by hand or by an
# earlier, larger start would otherwise keep mirroring.
# SYSTEMCTL overrides the systemctl command, SYSTEMD_UNIT_DIR the directory of enablement links.
set -eu

systemctl="${SYSTEMCTL:-systemctl}"
unit_dir="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"

# systemctl expands the pattern over loaded units, so this reaches every running instance.
$systemctl stop 'ferry-worker-payments.v2@*.service'

# Enabled instances are the links in the *.wants directories; disabling them keeps a reboot from restarting them.
enabled=''
for link in "$unit_dir"/*.wants/ferry-worker-payments.v2@*.service; do
  [ -L "$link" ] || continue # the pattern stays as is when nothing matches
  enabled="$enabled ${link##*/}"
done
if [ -n "$enabled" ]; then
  $systemctl disable $enabled
fi
echo "stop-payments.v2.sh: stopped every ferry-worker-payments.v2@ instance"
