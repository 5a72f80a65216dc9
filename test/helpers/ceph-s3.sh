#!/bin/bash
# Starts a throw-away single-node Ceph cluster with an S3 gateway, for the tests:
# one monitor, one in-memory OSD (memstore) and radosgw, as plain processes on loopback ports,
# without cephx, systemd, disks or a manager. Data lives in memory and is lost when they stop.
#
# usage: ceph-s3.sh DIR MON_PORT RGW_PORT [OWNER_PID]
#   DIR must be empty or absent.
#   Writes the pids to DIR/run/{mon,osd,rgw,watchdog}.pid and prints "READY http://127.0.0.1:RGW_PORT"
#   once the gateway answers and the S3 users exist: "tus-test" (access key and secret) and
#   "tus-quota", which may store at most 4 MiB.
#   With OWNER_PID, a watchdog SIGKILLs the three daemons and removes DIR once that process is gone,
#   so a test run that dies cannot leave them behind. Stop them yourself with SIGKILL (they hang on
#   SIGTERM once the monitor is gone), then remove DIR.
#
# Needs the Debian packages radosgw, ceph-mon and ceph-osd.
set -euo pipefail
D=$1
MONP=$2
RGWP=$3
OWNER=${4:-}

mkdir -p "$D"/{mon,osd,run,log}
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MONP
mon initial members = a
public addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
# without these two the OSD may send its device class before it has the monmap, and exit
osd crush update on start = false
osd class update on start = false
memstore device bytes = 8589934592
mon data = $D/mon
osd data = $D/osd
run dir = $D/run
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
[client.rgw.a]
# Nagle costs ~45 ms per request without tcp_nodelay
rgw frontends = beast endpoint=127.0.0.1:$RGWP tcp_nodelay=1
# free deleted and aborted data soon: the store is memory
rgw gc obj min wait = 30
rgw gc processor period = 30
CONF

C=(-c "$D/ceph.conf")
monmaptool --create --add a "v1:127.0.0.1:$MONP" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap"
ceph-mon "${C[@]}" -i a -f >"$D/log/mon.out" 2>&1 &
echo $! > "$D/run/mon.pid"

if [ -n "$OWNER" ]; then
  (
    trap '' HUP
    while kill -0 "$OWNER" 2>/dev/null; do sleep 1; done
    for name in rgw osd mon; do
      [ -f "$D/run/$name.pid" ] && kill -9 "$(cat "$D/run/$name.pid")" 2>/dev/null || true
    done
    rm -rf "$D"
  ) </dev/null >/dev/null 2>&1 &
  echo $! > "$D/run/watchdog.pid"
fi

ID=$(timeout 30 ceph "${C[@]}" osd create "$OSD_UUID")
ceph-osd "${C[@]}" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.out" 2>&1
timeout 30 ceph "${C[@]}" osd crush add "osd.$ID" 1.0 root=default host=localhost >/dev/null 2>&1
ceph-osd "${C[@]}" -i "$ID" -f >"$D/log/osd.out" 2>&1 &
echo $! > "$D/run/osd.pid"
radosgw "${C[@]}" -n client.rgw.a -f >"$D/log/rgw.out" 2>&1 &
echo $! > "$D/run/rgw.pid"

for _ in $(seq 240); do
  curl -sf -o /dev/null "http://127.0.0.1:$RGWP/" && break
  sleep 0.25
done
timeout 60 radosgw-admin "${C[@]}" user create --uid=tus-test --display-name=tus-test \
  --access-key=tus-test --secret-key=tus-test >/dev/null
# a second user that may store at most 4 MiB, for "store full" tests
radosgw-admin "${C[@]}" user create --uid=tus-quota --display-name=tus-quota \
  --access-key=tus-quota --secret-key=tus-quota >/dev/null
radosgw-admin "${C[@]}" quota set --quota-scope=user --uid=tus-quota --max-size=4194304 >/dev/null
radosgw-admin "${C[@]}" quota enable --quota-scope=user --uid=tus-quota >/dev/null
echo "READY http://127.0.0.1:$RGWP"
