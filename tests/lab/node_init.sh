#!/bin/bash
# PID 1 of one lab node (started by lab.ts inside the node's own network, mount, pid, uts and ipc
# namespaces). It gives the node its private /run, /dev/shm and state directories, sets the host name,
# signals readiness, then only reaps children. SIGKILL of this process from the host is a power cut:
# the kernel kills every process of the node's pid namespace.
# Usage: node_init.sh NODE_NAME NODE_DIR HOSTS_FILE
set -eu
node="$1"
dir="$2"
hosts="$3"

mount -t tmpfs -o mode=0755,size=64m prmrun /run
mount -t tmpfs -o mode=1777,size=256m prmshm /dev/shm
mount --bind "$dir/etc-corosync" /etc/corosync
mount --bind "$dir/var-lib-corosync" /var/lib/corosync
mount --bind "$dir/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$dir/log-pacemaker" /var/log/pacemaker
mount --bind "$dir/etc-mysql" /etc/mysql
mount --bind "$dir/mysql-data" /var/lib/mysql
mount --bind "$dir/log-mysql" /var/log/mysql
mount --bind "$hosts" /etc/hosts
# Two-site labs: booth.conf and its key (the same on every node and the arbitrator).
if [ -d "$dir/etc-booth" ]; then mount --bind "$dir/etc-booth" /etc/booth; fi
mkdir -p /run/mysqld /run/crm /run/resource-agents /run/lock /run/booth
chown mysql:mysql /run/mysqld
chown hacluster:haclient /run/booth
chown hacluster:haclient /run/crm
hostname "$node"
ip link set lo up
echo "$node" >"$dir/ready"

# The node's PID 1 only reaps: bash collects every exited child, orphans included, in its SIGCHLD
# handler while it waits here.
exec </dev/null >/dev/null 2>&1
while :; do
  sleep 3600 &
  wait $! || true
done
