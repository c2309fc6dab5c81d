#!/usr/bin/env bash
# Formats (first boot only) and mounts the persistent data volume that holds the ingest WAL
# and Caddy's certificates, so that both survive an instance rebuild. Never formats a volume
# that already carries a file system.
# Usage: mount-data VOLUME_ID MOUNT_POINT OWNER_UID
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 VOLUME_ID MOUNT_POINT OWNER_UID" >&2
  exit 2
fi
volume_id="$1"
mount_point="$2"
owner_uid="$3"

# OpenStack exposes the volume id (first 20 characters) as the virtio serial.
device="/dev/disk/by-id/virtio-${volume_id:0:20}"
for _ in $(seq 1 150); do
  [[ -e "$device" ]] && break
  sleep 2
done
if [[ ! -e "$device" ]]; then
  echo "mount-data: $device did not appear after 300 s; is volume $volume_id attached?" >&2
  exit 1
fi

if ! blkid "$device" >/dev/null 2>&1; then
  echo "mount-data: $device has no file system, formatting it (first use of the volume)"
  mkfs.ext4 -q -L accoreboot-data "$device"
fi

uuid="$(blkid -s UUID -o value "$device")"
mkdir -p "$mount_point"
if ! grep -q "UUID=$uuid" /etc/fstab; then
  echo "UUID=$uuid $mount_point ext4 defaults,nofail,x-systemd.device-timeout=120s 0 2" >>/etc/fstab
fi
systemctl daemon-reload
mountpoint -q "$mount_point" || mount "$mount_point"

# Layout used by compose/docker-compose.yml (bind mounts).
install -d -m 0750 -o "$owner_uid" -g "$owner_uid" \
  "$mount_point/ingest" "$mount_point/ingest/wal" \
  "$mount_point/caddy" "$mount_point/caddy/data" "$mount_point/caddy/config"

# Docker must not start its containers before the volume is mounted.
install -d /etc/systemd/system/docker.service.d
cat >/etc/systemd/system/docker.service.d/accoreboot-data.conf <<UNIT
[Unit]
RequiresMountsFor=$mount_point
After=accoreboot-policy-routing.service
UNIT
systemctl daemon-reload
echo "mount-data: $device mounted on $mount_point"
