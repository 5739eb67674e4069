#!/usr/bin/env bash
# Keeps the simulated cluster's components running, as a node's kubelet keeps static pods and
# systemd keeps a real node's services: started by start.sh, stopped by stop.sh.
#   supervise.sh start   start the watchdog in the background (once per cluster)
#   supervise.sh stop    stop it (before the components are stopped on purpose)
# Every 2 s it checks each control-plane process kwokctl started (kwokctl keeps their pid files
# and exact command lines; `kwokctl start cluster` starts only the ones that are not running) and
# each real-node process (realnode.sh keeps the same), and starts again any that exited. A stopped
# (SIGSTOP) process is alive and left alone. Each restart is logged to <state dir>/supervise.log.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

pidfile="$SIMCLUSTER_STATE_DIR/supervise.pid"
logfile="$SIMCLUSTER_STATE_DIR/supervise.log"
rn="$SIMCLUSTER_STATE_DIR/realnode"

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
supervisor_running() { [[ -f "$pidfile" ]] && alive "$(cat "$pidfile")"; }
say() { echo "$(date -Is) $*" >> "$logfile"; }

# The control-plane processes whose pid files name a dead process.
dead_components() {
  local f
  for f in "$cluster_dir"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    alive "$(cat "$f")" || basename "$f" .pid
  done
}
dead_node_components() {
  local f
  for f in "$rn"/run/*.cmd; do
    [[ -f "$f" ]] || continue
    local name; name="$(basename "$f" .cmd)"
    alive "$(cat "$rn/run/$name.pid" 2>/dev/null)" || echo "$name"
  done
}

watch() {
  local dead name
  say "supervising cluster $SIMCLUSTER_NAME (pid $$)"
  while [[ -d "$cluster_dir" ]]; do
    dead="$(dead_components | tr '\n' ' ')"
    if [[ -n "$dead" ]]; then
      say "exited: $dead- starting again"
      "$cache_bin/kwokctl" --name "$SIMCLUSTER_NAME" start cluster --timeout 3m </dev/null >>"$logfile" 2>&1 \
        || say "kwokctl start cluster failed; retrying"
    fi
    for name in $(dead_node_components); do
      say "exited: $name (real node) - starting again"
      "$here/realnode.sh" relaunch "$name" >>"$logfile" 2>&1 || say "restart of $name failed; retrying"
    done
    sleep 2
  done
  say "cluster directory gone; supervisor exits"
}

case "${1:-}" in
  start)
    supervisor_running && exit 0
    mkdir -p "$SIMCLUSTER_STATE_DIR"
    # Its own session, no inherited descriptors (start.sh's lock): it outlives start.sh.
    setsid "$0" watch </dev/null >>"$logfile" 2>&1 8>&- 9>&- &
    echo $! > "$pidfile"
    ;;
  watch) watch ;;
  stop)
    if supervisor_running; then
      pid="$(cat "$pidfile")"
      # Its process group: the watchdog and a restart it may be running (the components it
      # restarted run in sessions of their own and are left alone).
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  status) supervisor_running ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
