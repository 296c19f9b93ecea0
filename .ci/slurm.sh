#!/usr/bin/env bash
# A one-node SLURM on this machine for the workflow's SLURM tests (Debian's slurm-wlm 22.05 and munge).
#   .ci/slurm.sh start STATE_DIR   writes /etc/slurm/slurm.conf (state, logs and sockets under STATE_DIR), starts
#                                  munged, slurmctld and slurmd, and waits for the node
#   .ci/slurm.sh stop STATE_DIR    stops exactly the daemons it started (by their pid files), removes its config
# The config must sit at the default path: the SLURM job-step plugin clears SLURM_* variables (SLURM_CONF
# included) before its nested srun. An /etc/slurm/slurm.conf this script did not write is left alone (error).
# No accounting database: the profile's status command must be `squeue`, which needs a large MinJobAge (finished
# jobs stay visible). Needs root (the daemons run as root; munged with --force).
set -euo pipefail

action=${1:?usage: slurm.sh start|stop STATE_DIR}
state=$(realpath -m "${2:?usage: slurm.sh start|stop STATE_DIR}")
host=$(hostname -s)
conf=/etc/slurm/slurm.conf

stop() {
    for daemon in slurmd slurmctld munged; do
        if [ -f "$state/$daemon.pid" ]; then
            pid=$(cat "$state/$daemon.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            rm -f "$state/$daemon.pid"
        fi
    done
    if [ -f "$state/wrote-conf" ]; then
        rm -f "$conf" "$state/wrote-conf"
    fi
}

start() {
    mkdir -p "$state"/{spool,ctld,log,munge} /etc/slurm
    if [ -f "$conf" ] && ! grep -q '^ClusterName=fluxci$' "$conf"; then
        echo "$conf exists and is not this script's; not overwriting it" >&2
        return 1
    fi
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    touch "$state/wrote-conf"
    cat > "$conf" <<EOF
ClusterName=fluxci
SlurmctldHost=$host
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    munged --force --socket "$state/munge/munge.socket" --pid-file "$state/munged.pid" \
        --log-file "$state/log/munged.log" --seed-file "$state/munge/munge.seed"
    slurmctld -i
    slurmd
    for _ in $(seq 100); do
        if sinfo -h -N -o '%t' 2>/dev/null | grep -qx 'idle'; then
            echo "SLURM up: node $host, $cpus CPUs, ${memory} MB, partition debug ($conf)"
            return 0
        fi
        sleep 0.2
    done
    echo "SLURM did not come up; logs in $state/log" >&2
    tail -n 20 "$state"/log/*.log >&2 || true
    stop
    return 1
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: slurm.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
