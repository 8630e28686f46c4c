#!/bin/sh
# Runs one lab host's dockerd, inside the host's namespaces (mount namespace included), as
#   sh host-dockerd.sh HOST_DIR CGROUP_PARENT
# host-launcher.sh ends in it; a fault test that restarts dockerd runs it again in the same namespaces.
set -eu
: "${FLATNET_LAB_DNS:?the lab passes its DNS address in FLATNET_LAB_DNS}"
host_dir=$1
cgroup_parent=$2

exec dockerd \
  --containerd /run/containerd/containerd.sock \
  --data-root "$host_dir/data/docker" \
  --exec-root /run/docker \
  --pidfile /run/docker/dockerd.pid \
  -H unix:///run/docker/docker.sock \
  --storage-driver overlay2 \
  --exec-opt native.cgroupdriver=cgroupfs \
  --cgroup-parent "$cgroup_parent" \
  --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false \
  --bridge none \
  --dns "$FLATNET_LAB_DNS" \
  --shutdown-timeout 3
