#!/usr/bin/env bash
# Stop the single-node SLURM that scripts/ci/slurm_up.sh started (slurmd, slurmctld; munged
# too with --munge). Its config, state and logs stay; slurm_up.sh starts it again.
set -euo pipefail

STATE_DIR=${SLURM_CI_DIR:-/var/spool/nuclei-slurm}

stop() { # stop NAME PIDFILE: SIGTERM, then wait up to 10 s for the process to end
    local pid
    [[ -f $2 ]] && pid=$(cat "$2") && kill -0 "$pid" 2>/dev/null || return 0
    echo "slurm_down: stopping $1 ($pid)"
    kill "$pid"
    for _ in $(seq 10); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 1
    done
    echo "slurm_down: ERROR: $1 ($pid) still runs" >&2
    return 1
}

stop slurmd "$STATE_DIR/slurmd.pid"
stop slurmctld "$STATE_DIR/slurmctld.pid"
if [[ ${1:-} == --munge ]]; then
    stop munged /run/munge/munged.pid
fi
