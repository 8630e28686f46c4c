#!/bin/sh
# Starts one lab host's daemons: a private containerd, the flatnet plugin server (when given) and dockerd.
# The lab runs it as
#   nsenter --net=NETNS --uts=UTS -- unshare -m --propagation private -- sh host-launcher.sh \
#     HOST_DIR CGROUP_PROCS CGROUP_PARENT [PLUGIN_COMMAND ARG...]
# so every mount below lives only in this host's mount namespace and vanishes with its last process.
# A fixed file taking arguments: nothing here is built from strings, every value is quoted.
set -eu
# FLATNET_LAB_DNS (environment): the lab's DNS address (its router namespace); PATH leads to the engine's binaries.
: "${FLATNET_LAB_DNS:?the lab passes its DNS address in FLATNET_LAB_DNS}"

host_dir=$1
cgroup_procs=$2
cgroup_parent=$3
shift 3

# Joined first, so that containerd, its shims and the plugin are all found by teardown through this cgroup.
echo $$ > "$cgroup_procs"

# A fresh sysfs shows this namespace's links (/sys/class/net), which dockerd and the plugin read; the cgroup
# tree is carried over, or runc cannot place containers.
mount --rbind /sys/fs/cgroup "$host_dir/mnt/cgroup"
mount -t sysfs sysfs /sys
mount --rbind "$host_dir/mnt/cgroup" /sys/fs/cgroup
umount -l "$host_dir/mnt/cgroup"

# A private /run keeps the root namespace's file system untouched (no /run/docker or /run/containerd
# there); the per-host directories then isolate plugin discovery, engine identity and containerd.
mount -t tmpfs -o mode=755 flatnet-lab-run /run
mkdir -p /run/docker /run/containerd /run/netns
mount --bind "$host_dir/run-docker" /run/docker
mount --bind "$host_dir/run-containerd" /run/containerd
mount --bind "$host_dir/etc-docker" /etc/docker
# Nothing leaves the lab: the daemons (and containers, through --dns) resolve names only at the lab's router.
mount --bind "$host_dir/resolv.conf" /etc/resolv.conf
# Images and layers live in memory: no overlay mount or layer file survives the namespace.
mount -t tmpfs flatnet-lab-data "$host_dir/data"
mkdir -p "$host_dir/data/docker" "$host_dir/data/containerd"

containerd --config "$host_dir/containerd.toml" >>"$host_dir/logs/containerd.log" 2>&1 &
echo $! > "$host_dir/containerd.pid"

if [ $# -gt 0 ]; then
  # The plugin must be listening before dockerd starts, or a restarted daemon's networks fail to restore.
  "$@" >>"$host_dir/logs/flatnet.log" 2>&1 &
  echo $! > "$host_dir/flatnet.pid"
  i=0
  while [ ! -S /run/docker/plugins/flatnet.sock ]; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "flatnet plugin socket did not appear" >&2; exit 1; fi
    sleep 0.1
  done
fi

i=0
while [ ! -S /run/containerd/containerd.sock ]; do
  i=$((i + 1))
  if [ $i -gt 300 ]; then echo "containerd socket did not appear" >&2; exit 1; fi
  sleep 0.1
done

# dockerd's own arguments live in host-dockerd.sh, which a fault test also runs to restart dockerd alone.
exec sh "$(dirname "$0")/host-dockerd.sh" "$host_dir" "$cgroup_parent"
