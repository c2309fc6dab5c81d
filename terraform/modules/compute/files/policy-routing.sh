#!/usr/bin/env bash
# Policy routing for an OVH instance with two interfaces: the public one (Ext-Net, default
# route) and the private one (vRack subnet, no gateway). Traffic sourced from the private
# address always leaves through the private interface, everything else through the public
# one, and Docker's bridges never overlap the private subnet. Idempotent; run at every boot
# by accoreboot-policy-routing.service, before docker.service.
set -euo pipefail

conf="${1:-/etc/accoreboot/network.env}"
if [[ ! -r "$conf" ]]; then
  echo "policy-routing: cannot read $conf (expected PRIVATE_IP and PRIVATE_CIDR)" >&2
  exit 1
fi
# shellcheck source=/dev/null
. "$conf"
: "${PRIVATE_IP:?policy-routing: PRIVATE_IP is not set in $conf}"
: "${PRIVATE_CIDR:?policy-routing: PRIVATE_CIDR is not set in $conf}"

table=142
priority=1420

# The private interface is the one holding PRIVATE_IP; DHCP may take a moment after boot.
private_if=""
for _ in $(seq 1 60); do
  private_if="$(ip -4 -o addr show | awk -v ip="$PRIVATE_IP" 'index($4, ip "/") == 1 { print $2; exit }')"
  [[ -n "$private_if" ]] && break
  sleep 2
done
if [[ -z "$private_if" ]]; then
  echo "policy-routing: no interface holds $PRIVATE_IP after 120 s; is the private network attached?" >&2
  exit 1
fi

# Never route the default through the private interface.
while ip -4 route show default dev "$private_if" | grep -q .; do
  ip -4 route del default dev "$private_if"
done

# Replies and connections from the private address stay on the private interface.
ip -4 route replace "$PRIVATE_CIDR" dev "$private_if" src "$PRIVATE_IP" table "$table"
if ! ip -4 rule show | grep -q "from $PRIVATE_IP lookup $table"; then
  ip -4 rule add from "$PRIVATE_IP" lookup "$table" priority "$priority"
fi

# Asymmetric paths between the two interfaces must not be dropped by reverse-path filtering.
sysctl -q -w net.ipv4.conf.all.rp_filter=2
sysctl -q -w "net.ipv4.conf.${private_if}.rp_filter=2"

echo "policy-routing: $private_if ($PRIVATE_IP) routes $PRIVATE_CIDR through table $table"
