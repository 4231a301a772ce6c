#!/usr/bin/env bash
# Tests of a real FUSE mount whose S3 traffic goes through fault_proxy.py, a loopback proxy that
# resets connections, answers 500/503, truncates or garbles answers, and refuses chosen keys:
#   1. poison keys: 4 files whose keys S3 refuses forever (500 on every request) must not hold up
#      the 200 files written after them; `strata queue` lists the 4; once S3 takes them they
#      arrive too.
#   2. reads and metadata under faults (20% of requests, all kinds but stall): ls -lR, stat and
#      cat of 30 seeded objects on fresh mounts succeed and read the right bytes, never EIO;
#      5 starts of the mount at 30% faults all succeed.
#   3. many queue entries: 2,000 new files while every request for their keys is refused;
#      `strata queue` lists them all; then S3 takes them and the queue drains.
#   4. S3 stops answering (every request stalls): with --request-timeout 2, cached files,
#      listings and attributes are still served, an uncached file fails with EIO, nothing hangs,
#      `strata stats` shows the mount degraded; when S3 answers again it recovers.
# What reaches S3 is checked with the seed tool directly on the endpoint, not through the proxy.
# Usage: fault_test.sh STRATA_BIN SEED_BIN   (skips with 77 without a test server or /dev/fuse)
# Env: STRATA_FAULT_SEED (random): the proxy's RNG seed, to replay its choices of faults.
#   STRATA_TEST_QUICK=1 (the sanitizer builds in CI): 1 read round instead of 3, 3 starts
#   instead of 5 and 500 files instead of 2,000, the same checks on less data.
# On a failure the daemon logs and the proxy's log of injected faults are kept in
# /tmp/strata-fault-failed.*.
set -uo pipefail
strata=$1 seed=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require fuse python3
use_test_server
export LC_ALL=C
upstream=${ep#*://}
upstream=${upstream%%/*}
fault_proxy=$(cd "$(dirname "$0")" && pwd)/fault_proxy.py
run_seed=${STRATA_FAULT_SEED:-$RANDOM}
work=$(mktemp -d /tmp/strata-fault-test.XXXXXX)
rounds=3 starts=5 many=2000
[[ ${STRATA_TEST_QUICK:-0} == 1 ]] && rounds=1 starts=3 many=500
mnt=$work/mnt
mkdir -p "$mnt"
daemon=""           # pid of the running foreground daemon, started here
proxy="" pport=""   # pid and port of the running fault proxy, started here
buckets=()          # emptied at exit
bucket="" cache="" log=""  # of the current case

said() { [[ -s $1 ]] && printf ': %s' "$(head -c 200 "$1" | tr '\n' ' ')"; }  # said ERR_FILE

start_proxy() {  # start_proxy OPTION...: a fault proxy in front of the endpoint; sets pport
  rm -f "$work/proxy.port"
  python3 "$fault_proxy" --upstream "$upstream" --port-file "$work/proxy.port" \
    --seed "$run_seed" --log "$work/proxy.log" "$@" >/dev/null 2>>"$work/proxy.err" &
  proxy=$!
  for _ in $(seq 100); do
    [[ -s $work/proxy.port ]] && { pport=$(cat "$work/proxy.port"); return 0; }
    kill -0 "$proxy" 2>/dev/null || break
    sleep 0.05
  done
  echo "     the fault proxy did not start:"; sed 's/^/     | /' "$work/proxy.err"
  return 1
}
stop_proxy() {
  [[ -n $proxy ]] || return 0
  kill -TERM "$proxy" 2>/dev/null
  wait "$proxy" 2>/dev/null
  proxy="" pport=""
}
proxy_ctl() { python3 "$fault_proxy" ctl --port "$pport" "$@"; }  # proxy_ctl config|stats [K=V...]
proxy_set() { proxy_ctl config "$@" >/dev/null; }
proxy_faults() {  # the injected faults so far, one line: kind=count ...
  proxy_ctl stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("%d requests, injected: " % s["requests"]
      + (" ".join("%s %d" % kv for kv in s["faults"].items() if kv[1]) or "none"))'
}

start_daemon() {  # start_daemon MOUNT_OPTION...: the daemon in the foreground, in the background
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "http://127.0.0.1:$pport" --cache-dir "$cache" \
    --drain-timeout 10 -f "$@" >>"$log" 2>&1 &
  daemon=$!
  await_mount 600 && return 0
  if kill -0 "$daemon" 2>/dev/null; then kill_daemon; else wait "$daemon" 2>/dev/null; daemon=""; fi
  return 1
}
stop_daemon() {  # clean unmount: the daemon drains (at most --drain-timeout) and exits with 0
  [[ -n $daemon ]] || return 0
  local rc
  unmount_daemon 400 || return 1
  wait "$daemon"; rc=$?
  daemon=""
  detach
  [[ $rc -eq 0 ]] || { echo "     the daemon exited with $rc"; daemon_log; }
  [[ $rc -eq 0 ]]
}
cleanup() {
  [[ -n $daemon ]] && kill_only
  detach
  stop_proxy
  empty_buckets
  keep_on_failure fault "daemon logs and the proxy's fault log" \
    "$work"/daemon-*.log "$work"/proxy.log "$work"/proxy.err  # not the data
  rm -rf "$work"
}
trap cleanup EXIT

new_case() {  # new_case LABEL: a fresh bucket, cache directory and daemon log
  bucket="strata-fault-$$-$1" cache=$work/cache-$1 log=$work/daemon-$1.log
  buckets+=("$bucket")
  S mb
}
wait_drained() {  # wait_drained [SECONDS]: until queue_depth is 0
  local depth="" start=$SECONDS
  for _ in $(seq $((${1:-60} * 10))); do
    depth=$(quiet_stat_of queue_depth)
    [[ $depth == 0 ]] && { echo "     drained in $((SECONDS - start)) s"; return 0; }
    sleep 0.1
  done
  echo "     queue_depth still ${depth:-unknown}, $(quiet_stat_of queue_dead_letters) dead letters; pending:"
  "$strata" queue "$mnt" 2>&1 | head -n 6 | sed 's/^/     | /'
  return 1
}
# bucket_has FILE_LIST: every "KEY LOCAL_FILE" line of FILE_LIST is in the bucket, byte-identical.
bucket_has() {
  local rc=0
  S compare "$1" >"$work/compare.out" 2>&1 || rc=$?
  sed 's/^/     /' "$work/compare.out"
  return "$rc"
}
mount_has() {  # mount_has FILE_LIST...: every "KEY LOCAL_FILE" line reads back on the mount
  local key file wrong=0
  while read -r key file; do
    cmp -s "$mnt/$key" "$file" || { ((wrong++ < 5)) && echo "     $key: differs on the mount"; }
  done < <(cat "$@")
  [[ $wrong -eq 0 ]]
}

echo "== seed $run_seed (STRATA_FAULT_SEED replays the proxy's choices)"

echo "== 1. poison keys: 4 keys S3 refuses forever do not hold up the 200 files after them"
t0=$SECONDS
new_case keys  # the bucket name must not hold "poison"
src=$work/src-keys
mkdir -p "$src/sub"
: >"$work/poison.list" && : >"$work/others.list"
if start_proxy --rate 0 --fail-key poison && start_daemon --attr-ttl 1; then
  ok "mount through the proxy (port $pport)"
  wrote=0
  for i in 1 2 3 4; do
    printf 'poison %d %s\n' "$i" "$RANDOM$RANDOM" >"$src/poison$i"
    cp "$src/poison$i" "$mnt/poison$i" && wrote=$((wrote + 1))
    echo "poison$i $src/poison$i" >>"$work/poison.list"
  done
  mkdir "$mnt/sub" || true
  for ((i = 0; i < 200; i++)); do
    name=$(printf 'f%03d' "$i")
    ((i % 4 == 3)) && name=sub/$name
    printf 'file %d %s %s\n' "$i" "$RANDOM$RANDOM" "$(date +%s%N)" >"$src/$name"
    cp "$src/$name" "$mnt/$name" && wrote=$((wrote + 1))
    echo "$name $src/$name" >>"$work/others.list"
  done
  check "204 files written through the mount ($wrote)" test "$wrote" -eq 204
  # Until 201 uploads (the 200 files and the sub/ marker) are done; given up after 90 s, or
  # after 20 s without one more upload done.
  t1=$SECONDS last=-1 since=$SECONDS done_n=0
  while ((SECONDS - t1 < 90 && SECONDS - since < 20)); do
    done_n=$(quiet_stat_of queue_uploads_done)
    ((${done_n:-0} >= 201)) && break
    [[ ${done_n:-0} != "$last" ]] && { last=${done_n:-0}; since=$SECONDS; }
    sleep 0.2
  done
  echo "     $done_n uploads done after $((SECONDS - t1)) s; queue_depth $(quiet_stat_of queue_depth)"
  check "the 200 other files reach S3 while the poison keys fail (uploads done: $done_n)" \
    test "${done_n:-0}" -ge 201
  S ls "" | grep -v -e poison -e '/$' | sort >"$work/keys"
  cut -d' ' -f1 "$work/others.list" | sort >"$work/expected-keys"
  missing=$(comm -13 "$work/keys" "$work/expected-keys" | wc -l)
  check "  all 200 listed in the bucket ($missing missing)" test "$missing" -eq 0
  if [[ $missing -eq 0 ]]; then
    check "  all 200 byte-identical in the bucket" bucket_has "$work/others.list"
  fi
  "$strata" queue "$mnt" >"$work/queue.out" 2>"$work/queue.err"; rc=$?
  check "strata queue exits 0 (exit $rc$(said "$work/queue.err"))" test "$rc" -eq 0
  listed=$(awk -F'\t' 'NR > 1 && $4 ~ /poison/' "$work/queue.out" | wc -l)
  check "  lists the 4 poison entries ($listed)" test "$listed" -eq 4
  awk -F'\t' 'NR > 1 && $4 ~ /poison/ { printf "     | %s %s attempts %s: %s\n", $2, $4, $7, $9 }' \
    "$work/queue.out" | head -n 4
  shown=$(find "$mnt" -type f 2>/dev/null | wc -l)
  check "the mount shows all 204 files ($shown)" test "$shown" -eq 204
  check "every file on the mount reads back" mount_has "$work/poison.list" "$work/others.list"
  proxy_set clear_fail_keys=1
  t1=$SECONDS
  check "the fail keys cleared: the queue drains" wait_drained 60
  check "  the 4 poison files are in S3, byte-identical" bucket_has "$work/poison.list"
  echo "     proxy: $(proxy_faults)"
  check "unmount cleanly" stop_daemon
else
  bad "poison: proxy or mount did not start"
fi
stop_proxy
echo "     case 1 took $((SECONDS - t0)) s"

echo "== 2. reads and metadata with 20% of S3 requests failing (all faults but stall)"
t0=$SECONDS
new_case reads
src=$work/src-reads
mkdir -p "$src"
: >"$work/reads.list"
sizes=(0 1 17 1000 4096 65537 300000 1048575 1048576 1048577 2500000 4194309)
dirs=("" "" "" d1/ d1/ d1/d2/ d3/)
for ((i = 0; i < 30; i++)); do
  size=${sizes[i % ${#sizes[@]}]}
  key=${dirs[i % ${#dirs[@]}]}obj$i.bin
  head -c "$size" /dev/urandom >"$src/$i"
  S put "$key" "$src/$i" || bad "seed $key"
  echo "$key $size $(sha256sum <"$src/$i" | cut -d' ' -f1)" >>"$work/reads.list"
done
read_round() {  # read_round ROUND PASS: ls -lR, stat and cat+sha256 of every object
  local round=$1 pass=$2 key size sha got errors=0 out n
  out=$(ls -lR "$mnt" 2>&1) || { echo "     ls -lR: $(grep -v '^[-dt]' <<<"$out" | head -n 3)"; errors=$((errors + 1)); }
  n=$(grep -c '^-' <<<"$out")
  [[ $n -eq 30 ]] || { echo "     ls -lR shows $n files, not 30"; errors=$((errors + 1)); }
  while read -r key size sha; do
    if ! got=$(stat -c %s "$mnt/$key" 2>&1); then
      echo "     stat $key: $got"; errors=$((errors + 1))
    elif [[ $got != "$size" ]]; then
      echo "     stat $key: size $got, expected $size"; errors=$((errors + 1))
    fi
    # shellcheck disable=SC2002  # cat, as any reader would, for its error message
    if ! got=$(cat "$mnt/$key" 2>"$work/cat.err" | sha256sum | cut -d' ' -f1); then
      echo "     cat $key: $(head -n 1 "$work/cat.err")"; errors=$((errors + 1))
    elif [[ $got != "$sha" ]]; then
      echo "     cat $key: sha256 ${got:0:12}, expected ${sha:0:12}"; errors=$((errors + 1))
    fi
  done <"$work/reads.list"
  check "round $round pass $pass: ls -lR, stat and cat of 30 objects, every byte right ($errors errors)" \
    test "$errors" -eq 0
}
if start_proxy --rate 0 --faults reset_before,reset_body,reset_after,status_5xx,truncate,garble; then
  for ((round = 1; round <= rounds; round++)); do
    cache=$work/cache-reads-$round
    if start_daemon --attr-ttl 0 --chunk-size 1M --read-only; then
      proxy_set rate=0.2
      read_round "$round" 1
      read_round "$round" 2
      proxy_set rate=0
      check "round $round: unmount" stop_daemon
    else
      bad "round $round: mount (faults off)"
    fi
  done
  echo "     proxy: $(proxy_faults)"
  proxy_set rate=0.3
  started=0
  for ((i = 1; i <= starts; i++)); do
    cache=$work/cache-start-$i
    t1=$SECONDS
    if start_daemon --attr-ttl 0; then
      started=$((started + 1))
      echo "     start $i at 30% faults: mounted in $((SECONDS - t1)) s"
      stop_daemon || bad "start $i: unmount"
    else
      echo "     start $i at 30% faults: failed"
    fi
  done
  check "$starts starts of the mount at 30% faults all succeed ($started)" test "$started" -eq "$starts"
  echo "     proxy: $(proxy_faults)"
else
  bad "reads: proxy did not start"
fi
stop_proxy
echo "     case 2 took $((SECONDS - t0)) s"

echo "== 3. many queue entries: $many files while S3 refuses every request for their keys"
t0=$SECONDS
new_case many
if start_proxy --rate 0 && start_daemon --attr-ttl 1; then
  # Every request for a key under many/ fails (path-style: /BUCKET/many/...); listings (the
  # lookups of new names) have the bucket alone as their path and get through.
  proxy_set "fail_key=/$bucket/many/"
  t1=$SECONDS
  check "create $many small files" python3 -c '
import concurrent.futures, os, sys
d = os.path.join(sys.argv[1], "many")
os.mkdir(d)
def create(i):
    with open(os.path.join(d, f"n{i:04d}"), "wb") as f:
        if i % 2:
            f.write(b"%d\n" % i)
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(create, range(int(sys.argv[2]))))
' "$mnt" "$many"
  echo "     created in $((SECONDS - t1)) s; queue_depth $(quiet_stat_of queue_depth)"
  "$strata" queue "$mnt" >"$work/queue.out" 2>"$work/queue.err"; rc=$?
  lines=$(wc -l <"$work/queue.out")
  check "strata queue exits 0 (exit $rc$(said "$work/queue.err"))" test "$rc" -eq 0
  check "  and lists more than $many lines ($lines)" test "$lines" -gt "$many"
  proxy_set clear_fail_keys=1
  check "the fail key cleared: the queue drains" wait_drained 90
  keys=$(S ls many/ | grep -c '^many/n')
  check "  $many objects in the bucket ($keys)" test "$keys" -eq "$many"
  echo "     proxy: $(proxy_faults)"
  check "unmount cleanly" stop_daemon
else
  bad "many: proxy or mount did not start"
fi
stop_proxy
echo "     case 3 took $((SECONDS - t0)) s"

echo "== 4. S3 stops answering: bounded waits, cached data and metadata still served, recovery"
# The proxy takes every request and answers none (stall). With --request-timeout 2 the first
# call that needs S3 fails or falls back to the cache within a few seconds; after it the mount is
# degraded and nothing waits for S3: what was read before is served from the cache (attributes
# and listings past --attr-ttl, chunks from the tiers), what was not fails at once with EIO. When
# S3 answers again, a probe ends degraded mode. Timings are printed, not asserted; `timeout 60`
# only turns a hang into a failure.
t0=$SECONDS
new_case stall
printf 'cached bytes\n' >"$work/cached.txt"
printf 'never read\n' >"$work/uncached.txt"
S put dir/cached.txt "$work/cached.txt"
S put dir/uncached.txt "$work/uncached.txt"
timed() {  # timed CMD...: runs CMD (at most 60 s), prints its time; its status is the command's
  local t1 rc
  t1=$(date +%s.%N)
  timeout 60 "$@" >"$work/timed.out" 2>"$work/timed.err"; rc=$?
  echo "     $* -> exit $rc in $(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
  return "$rc"
}
if start_proxy --rate 0 && start_daemon --attr-ttl 1 --request-timeout 2; then
  check "read through the mount while S3 answers" cmp -s "$mnt/dir/cached.txt" "$work/cached.txt"
  ls "$mnt/dir" >/dev/null
  proxy_set rate=1 faults=stall stall_seconds=600
  sleep 1.2  # past --attr-ttl
  check "S3 stalled: a cached file still reads (stale attributes, cached chunk)" \
    timed cmp -s "$mnt/dir/cached.txt" "$work/cached.txt"
  check "  the directory still lists" timed ls "$mnt/dir"
  check "  and holds both names" grep -qx uncached.txt "$work/timed.out"
  check "  stat of the cached file" timed stat "$mnt/dir/cached.txt"
  timed cat "$mnt/dir/uncached.txt"; rc=$?
  check "  a file never read fails with EIO (exit $rc$(said "$work/timed.err"))" \
    grep -q "Input/output error" "$work/timed.err"
  check "  strata stats shows the mount degraded" test "$(quiet_stat_of degraded)" = 1
  check "  with stale answers counted" test "$(quiet_stat_of metadata_stale_answers)" -gt 0
  proxy_set rate=0
  t1=$SECONDS
  for _ in $(seq 300); do [[ $(quiet_stat_of degraded) == 0 ]] && break; sleep 0.1; done
  check "S3 back: degraded ends ($((SECONDS - t1)) s)" test "$(quiet_stat_of degraded)" = 0
  check "  the file never read now reads" cmp -s "$mnt/dir/uncached.txt" "$work/uncached.txt"
  echo "     proxy: $(proxy_faults)"
  check "unmount cleanly" stop_daemon
else
  bad "stall: proxy or mount did not start"
fi
stop_proxy
echo "     case 4 took $((SECONDS - t0)) s"

echo "$passed passed, $failed failed (seed $run_seed, $SECONDS s)"
[[ $failed -eq 0 ]]
