#!/usr/bin/env bash
# plugvisor example plugin in bash: a worker without a port. It does its work (here: a tick)
# every intervalSeconds (from PLUGVISOR_CONFIG) and touches $HEARTBEAT_FILE each time;
# `ticker.sh health`, the manifest's exec probe, passes while that file is fresh.
set -euo pipefail

heartbeat=${HEARTBEAT_FILE:?set HEARTBEAT_FILE in the manifest env}
interval=1
# PLUGVISOR_CONFIG is JSON; a flat number is all this plugin needs, so no JSON tool is required.
if [[ ${PLUGVISOR_CONFIG:-} =~ \"intervalSeconds\"[[:space:]]*:[[:space:]]*([0-9]+) ]]; then
  interval=${BASH_REMATCH[1]}
fi

if [[ ${1:-} == health ]]; then
  # Fresh: touched within three intervals.
  [[ -f $heartbeat ]] && (( $(date +%s) - $(stat -c %Y "$heartbeat") <= 3 * interval ))
  exit
fi

ticks=0
# The stop signal: finish the current tick, say so, exit 0. `wait` returns at once on a signal.
trap 'echo "ticker stopping after $ticks ticks"; rm -f "$heartbeat"; exit 0' TERM INT
echo "ticker started: a tick every ${interval} s, heartbeat in $heartbeat"
while true; do
  ticks=$((ticks + 1))
  touch "$heartbeat"
  echo "tick $ticks"
  sleep "$interval" &
  wait $! || true
done
