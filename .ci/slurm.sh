#!/usr/bin/env bash
# A single-node Slurm on this machine, for the sweep tests (and for a developer who wants one).
#
#   bash .ci/slurm.sh install   # Debian packages: slurmctld, slurmd, slurm-client, munge (root)
#   bash .ci/slurm.sh up        # write the config, start munged, slurmctld, slurmd; wait for idle
#   bash .ci/slurm.sh down      # stop the daemons this script started (by their pid files)
#   bash .ci/slurm.sh env       # print `export SLURM_CONF=…` for the shell that submits
#
# Everything lives under $ODM_SLURM_DIR (default /tmp/odm-slurm): slurm.conf, state, spool, logs
# and pid files; nothing is written under /etc except what the packages install. No accounting
# database; proctrack/linuxproc and task/none, so it runs without cgroups (containers).
set -euo pipefail

DIR=${ODM_SLURM_DIR:-/tmp/odm-slurm}
CONF=$DIR/slurm.conf

install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
  fi
}

write_conf() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
  local node
  node=$(slurmd -C | head -1)            # NodeName=<host> CPUs=… RealMemory=…
  local host=${node#NodeName=}; host=${host%% *}
  cat >"$CONF" <<EOF
ClusterName=odm
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MaxArraySize=1001
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
  write_conf
  export SLURM_CONF=$CONF
  if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null \
    && sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle\|mix\|alloc'; then
    echo "slurm: already up (SLURM_CONF=$CONF)"
    return 0
  fi
  if [ ! -S /run/munge/munge.socket.2 ]; then
    mkdir -p /run/munge
    [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chmod 400 /etc/munge/munge.key; }
    munged --force --pid-file="$DIR/munged.pid"
  fi
  slurmctld -f "$CONF" -i
  slurmd -f "$CONF"
  for _ in $(seq 60); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "slurm: node idle (SLURM_CONF=$CONF)"
      return 0
    fi
    sleep 1
  done
  echo "slurm: the node did not become idle within 60 s; logs in $DIR" >&2
  tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
  return 1
}

down() {
  for d in slurmd slurmctld munged; do
    local pf=$DIR/$d.pid
    if [ -f "$pf" ]; then
      kill "$(cat "$pf")" 2>/dev/null || true
      rm -f "$pf"
    fi
  done
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: bash .ci/slurm.sh install|up|down|env" >&2; exit 2 ;;
esac
