#!/usr/bin/env bash
# rgw.sh start|stop|status: a single-node Ceph RADOS Gateway (real S3) on loopback, for strata's
# tests, benchmarks and demo. One monitor, one in-memory OSD (memstore), one radosgw; about 15 s
# to start. Only the pids it started (recorded under RGW_DIR) are stopped.
# Path-style on http://127.0.0.1:PORT; virtual-hosted on http://BUCKET.localhost:PORT.
# Env: RGW_DIR (state, default /tmp/rgw), RGW_PORT (7480), RGW_MEM_MB (OSD memory, 4096),
#      RGW_ACCESS_KEY / RGW_SECRET_KEY (fixed test credentials).
set -euo pipefail
D=${RGW_DIR:-/tmp/rgw}; PORT=${RGW_PORT:-7480}; MEM=${RGW_MEM_MB:-4096}
AK=${RGW_ACCESS_KEY:-testkey}; SK=${RGW_SECRET_KEY:-testsecret}
MONV1=$((PORT + 1)); MONV2=$((PORT + 2))
C="$D/ceph.conf"

install() {
  command -v radosgw >/dev/null && command -v ceph-osd >/dev/null && return
  local pkgs=(ceph-mon ceph-osd radosgw)
  apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; }
}

write_conf() {
  mkdir -p "$D"/{run,log,rgw,mon.a,osd.0}
  cat >"$C" <<CONF
[global]
fsid = $(cat "$D/fsid")
mon host = [v2:127.0.0.1:$MONV2,v1:127.0.0.1:$MONV1]
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $D/run
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
keyring = $D/keyring
ms bind ipv6 = false
ms mon client mode = crc
ms client mode = crc
[mon]
mon data = $D/mon.\$id
[osd]
osd data = $D/osd.\$id
osd objectstore = memstore
memstore device bytes = $((MEM * 1024 * 1024))
osd max object name len = 2048
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw dns name = localhost
rgw data = $D/rgw
CONF
}

wait_for() { # wait_for SECONDS CMD...
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}

start() {
  install
  if [[ -f $D/rgw.pid ]] && kill -0 "$(cat "$D/rgw.pid")" 2>/dev/null; then echo "already running on 127.0.0.1:$PORT"; return; fi
  for p in "$PORT" "$MONV1" "$MONV2"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port $p on 127.0.0.1 is already in use: choose another RGW_PORT" >&2; exit 1
    fi
  done
  rm -rf "$D"; mkdir -p "$D"
  cat /proc/sys/kernel/random/uuid >"$D/fsid"
  write_conf
  : >"$D/keyring"
  monmaptool --create --fsid "$(cat "$D/fsid")" --addv a "[v2:127.0.0.1:$MONV2,v1:127.0.0.1:$MONV1]" "$D/monmap" >/dev/null
  ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" >/dev/null 2>&1
  ceph-mon -c "$C" -i a --pid-file "$D/mon.pid" 2>/dev/null
  wait_for 20 ceph -c "$C" --connect-timeout 2 mon stat || { echo "monitor did not start" >&2; exit 1; }
  local uuid; uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph -c "$C" osd new "$uuid" 0 >/dev/null
  ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
  ceph-osd -c "$C" -i 0 --pid-file "$D/osd.pid" 2>/dev/null
  wait_for 30 sh -c "ceph -c '$C' osd stat | grep -q '1 up'" || { echo "osd did not come up" >&2; exit 1; }
  radosgw -c "$C" -n client.rgw.a --pid-file "$D/rgw.pid"
  wait_for 60 curl -sf "http://127.0.0.1:$PORT/" || { echo "radosgw did not answer" >&2; exit 1; }
  radosgw-admin -c "$C" user create --uid=test --display-name=test --access-key="$AK" --secret-key="$SK" >/dev/null
  echo "radosgw on http://127.0.0.1:$PORT (access key $AK)"
}

stop() {
  for p in rgw osd mon; do
    local f="$D/$p.pid"
    [[ -f $f ]] || continue
    local pid; pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) curl -sf "http://127.0.0.1:$PORT/" >/dev/null && echo up || { echo down; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
