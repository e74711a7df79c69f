#!/usr/bin/env bash
# Start a single-node SLURM on this machine for tests/integration/test_slurm.py (Debian/Ubuntu,
# as root, no systemd needed: a container is fine). Installs slurm-wlm and munge with apt when
# missing, creates a munge key if there is none, starts munged, writes /etc/slurm/slurm.conf
# (one node: this host, all its CPUs and memory; partition "debug"), starts slurmctld and
# slurmd, and waits until the node is idle. Rerunning it while SLURM is up does nothing.
# scripts/ci/slurm_down.sh stops the daemons. Logs: $SLURM_CI_DIR/log (/var/spool/nuclei-slurm).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # slurmctld, slurmd and munged live there

STATE_DIR=${SLURM_CI_DIR:-/var/spool/nuclei-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# Written by nuclei scripts/ci/slurm_up.sh"
TIMEOUT_S=${SLURM_UP_TIMEOUT_S:-60}
HOST=$(hostname -s)

say() { echo "slurm_up: $*"; }
die() {
    echo "slurm_up: ERROR: $*" >&2
    exit 1
}

node_state() { sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n 1; }

node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null && return
    say "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (no network or no Debian mirror?)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
        die "apt-get install slurm-wlm munge failed"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    local key=/etc/munge/munge.key
    if [[ ! -s $key ]]; then
        say "creating $key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$key" && chmod 400 "$key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge)"
    munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge)"
}

write_conf() {
    if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching a real cluster's config"
    fi
    # slurmd -C: this machine's CPUs, sockets, cores, threads and RealMemory (MB), as slurmd
    # itself will report them (a node whose config claims more is drained).
    local node
    node=$(slurmd -C | grep '^NodeName=') || die "slurmd -C did not describe this node"
    node="NodeName=$HOST ${node#* }" # the name slurmd goes by: the short hostname
    mkdir -p "$(dirname "$CONF")" "$STATE_DIR"/{ctld,d,log}
    cat >"$CONF" <<EOF
$MARKER: a single-node SLURM for the tests.
ClusterName=nuclei-ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# No cgroups (a container): processes tracked through /proc, tasks not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Finished jobs, one line each (sacct needs slurmdbd, which this setup leaves out).
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/log/jobcomp.log
# Keep finished jobs in scontrol show job for 10 minutes.
MinJobAge=600
SchedulerType=sched/backfill
# CPUs and memory are shared out: two 1-CPU jobs run at once on a 2-CPU node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
# A node that was down comes back as soon as its slurmd registers with a valid config.
ReturnToService=2
KillWait=5
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    say "wrote $CONF for node: $node"
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemons() {
    if running "$STATE_DIR/slurmctld.pid"; then
        scontrol reconfigure || true # it runs, but its node is not idle: reread the config
    else
        slurmctld || die "slurmctld did not start"
    fi
    running "$STATE_DIR/slurmd.pid" || slurmd || die "slurmd did not start"
}

wait_for_node() {
    local waited=0
    until node_ready; do
        if ((waited >= TIMEOUT_S)); then
            tail -n 20 "$STATE_DIR"/log/*.log >&2 || true
            die "node $HOST is not idle after ${TIMEOUT_S}s (state: '$(node_state)'); logs above"
        fi
        # A node drained by an earlier start (e.g. a changed config) may need a nudge.
        if [[ $(node_state) =~ ^(drained|draining|down) ]]; then
            scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

main() {
    if command -v sinfo >/dev/null && node_ready; then
        say "SLURM is already up: node $HOST is $(node_state)"
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
    install_packages
    start_munge
    write_conf
    start_daemons
    wait_for_node
    say "SLURM is up"
    sinfo
}

main "$@"
