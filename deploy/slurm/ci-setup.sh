#!/usr/bin/env bash
# ci-setup.sh [start|stop]: a Slurm cluster on this machine, for the test of
# pi.sbatch (deploy/slurm). As root; installs Debian's slurm-wlm and munge
# where they are missing.
#
# Three nodes, mps1 to mps3: each slurmd runs in a network namespace of its
# own (10.254.0.11-13, on a bridge mps-br whose host side, 10.254.0.1, is
# slurmctld's address), so a job really spans hosts: the poolworkers srun
# starts listen on three addresses and the driver dials them over veths. They
# share this machine's file system, as cluster nodes share a home directory.
# The nodes' names are added to /etc/hosts, as a site's DNS would have them.
#
# slurm.conf is minimal: SlurmUser=root, auth/munge, proctrack/linuxproc and
# task/none (no cgroups needed), select/cons_tres, CPUs=2 per node.
# "stop" stops the daemons (munged too, if this script started it) and
# removes the namespaces and the bridge; /etc/hosts keeps the nodes' names.
set -euo pipefail

nodes=(mps1 mps2 mps3)
addr() { echo "10.254.0.1${1#mps}"; }
ctl_addr=10.254.0.1
conf=/etc/slurm/slurm.conf
state=/var/spool/mp-slurm
logs=/var/log/mp-slurm

stop() {
	for pidfile in /run/mp-slurmd-*.pid /run/mp-slurmctld.pid; do
		[ -e "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		if kill "$pid" 2>/dev/null; then
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
		rm -f "$pidfile"
	done
	if [ -e /run/mp-slurm-munged ] && [ -e /run/munge/munged.pid ]; then # munged is ours
		kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
		rm -f /run/mp-slurm-munged
	fi
	for n in "${nodes[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	ip link del mps-br 2>/dev/null || true
}

if [ "${1:-start}" = stop ]; then stop; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "ci-setup.sh: needs root" >&2; exit 1; fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
	echo "installing slurm-wlm and munge"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
command -v ip >/dev/null || { apt-get update -qq; apt-get install -y -qq iproute2 >/dev/null; }

stop

# munge: a key only munge can read, and munged running as munge.
if [ ! -s /etc/munge/munge.key ]; then
	(umask 077; head -c 1024 /dev/urandom >/etc/munge/munge.key)
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
	runuser -u munge -- /usr/sbin/munged
	touch /run/mp-slurm-munged
	for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The network: a bridge on the host, a namespace per node.
ip link add mps-br type bridge
ip addr add "$ctl_addr/24" dev mps-br
ip link set mps-br up
for n in "${nodes[@]}"; do
	ip netns add "$n"
	ip link add "$n-h" type veth peer name eth0 netns "$n"
	ip link set "$n-h" master mps-br up
	ip -n "$n" addr add "$(addr "$n")/24" dev eth0
	ip -n "$n" link set eth0 up
	ip -n "$n" link set lo up
done
sed -i '/# mp-slurm-ci$/d' /etc/hosts
{
	for n in "${nodes[@]}"; do echo "$(addr "$n") $n # mp-slurm-ci"; done
} >>/etc/hosts

install -d -m 0755 /etc/slurm "$state" "$logs"
rm -rf "${state:?}"/*
mkdir -p "$state/ctld"
for n in "${nodes[@]}"; do mkdir -p "$state/$n"; done
cat >"$conf" <<CONF
# Written by deploy/slurm/ci-setup.sh: a test cluster on one machine.
ClusterName=mpci
SlurmctldHost=$(hostname -s)($ctl_addr)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/%n
SlurmctldPidFile=/run/mp-slurmctld.pid
SlurmdPidFile=/run/mp-slurmd-%n.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd-%n.log
SlurmdTimeout=30
CONF
for n in "${nodes[@]}"; do echo "NodeName=$n NodeAddr=$(addr "$n") CPUs=2 State=UNKNOWN" >>"$conf"; done
echo "PartitionName=ci Nodes=ALL Default=YES MaxTime=30 State=UP" >>"$conf"

slurmctld -c
for n in "${nodes[@]}"; do nsenter --net="/run/netns/$n" slurmd -N "$n"; done

# Ready when every node is idle.
for _ in $(seq 120); do
	idle=$(sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)
	[ "$idle" = "${#nodes[@]}" ] && { sinfo -N; exit 0; }
	sleep 0.5
done
echo "ci-setup.sh: the nodes did not come up:" >&2
sinfo -N >&2 || true
tail -n 20 "$logs"/*.log >&2 || true
exit 1
