#!/usr/bin/env bash
# The EXIT trap and helpers look unreachable to shellcheck.
# shellcheck disable=SC2317
# Read-path benchmark (issue 11): strata through a real FUSE mount next to a reference on the same
# S3 server, the same objects and the same machine, in one run. A benchmark prints figures; it
# asserts nothing (it fails only when it cannot measure). Each row: strata, the reference, the
# ratio strata / reference, and the daemon's peak RSS (VmHWM, reset before each workload) next
# to the budget --memory-cache + 64 MiB.
#   cold sequential read of a SIZE object: `cat` through a fresh mount (new, empty cache dir,
#     page cache dropped), MB/s, vs one `curl` GET of the whole object (SigV4) to /dev/null
#   warm sequential read from the disk tier: the SIZE object with every chunk in the disk tier
#     (read through until a pass makes no GET), remounted (empty memory tier), page cache
#     dropped, MB/s, vs `cat` of the same bytes from a local file (page cache dropped)
#   random 4 KiB reads, fio (psync, direct=1 when the mount takes O_DIRECT, else direct=0 on
#     both), 1 and 4 jobs, IOPS: a file twice the memory tier with every chunk on disk
#     (remounted: empty memory tier), and a file half the memory tier read once through the
#     mount first; each vs the same bytes in a local file
#   time to first byte of a cold SIZE object: open + 4 KiB pread through a fresh mount (page
#     cache dropped), ms, vs one 4 KiB ranged curl GET (time_total); medians of TTFB_ROUNDS
#   4 cold readers of 4 different PAR objects at once (fresh mount): aggregate MB/s vs 4 curls
#   `ls -l` of a directory of FILES objects, warm (the third listing on a fresh mount with
#     --attr-ttl ATTR_TTL), s, vs the same tree (names, sizes) on local disk, warm
# Sizes: MiB = 2^20 bytes, MB = 10^6 bytes. Local files and the cache dir live in a temp dir in
# /tmp (the same disk). Needs root (drops the page cache) and /dev/fuse. Env:
#   STRATA_BENCH_SIZE_MB (1024) the large object; STRATA_BENCH_MEMORY (512M) --memory-cache;
#   STRATA_BENCH_PAR_MB (256, at most SIZE_MB when unset) each of the 4 parallel objects;
#   STRATA_BENCH_FILES (10000); STRATA_BENCH_FIO_SECONDS (10); STRATA_BENCH_TTFB_ROUNDS (3);
#   STRATA_BENCH_ATTR_TTL (30); STRATA_BENCH_MOUNT_OPTS (extra options for every mount, split
#   on spaces, e.g. "--chunk-size 4M"); STRATA_BENCH_BUILD (build);
#   STRATA_BENCH_ENDPOINT, else STRATA_TEST_ENDPOINT (loopback only), else a radosgw started
#   here on a free loopback port with tests/s3/rgw.sh and stopped at exit;
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default: STRATA_TEST_* keys, else testkey/testsecret).
# Quick smoke run: STRATA_BENCH_SIZE_MB=64 STRATA_BENCH_MEMORY=32M STRATA_BENCH_FILES=1000 \
#   STRATA_BENCH_FIO_SECONDS=2 bash tests/bench/read_path.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

knobs=(STRATA_BENCH_SIZE_MB STRATA_BENCH_MEMORY STRATA_BENCH_PAR_MB STRATA_BENCH_FILES
  STRATA_BENCH_FIO_SECONDS STRATA_BENCH_TTFB_ROUNDS STRATA_BENCH_ATTR_TTL STRATA_BENCH_MOUNT_OPTS
  STRATA_BENCH_BUILD STRATA_BENCH_ENDPOINT STRATA_TEST_ENDPOINT)
command_line=""
for k in "${knobs[@]}"; do
  [[ -z ${!k:-} ]] || command_line+="$k=$(printf %q "${!k}") "
done
command_line+="bash tests/bench/read_path.sh"

size_mb=${STRATA_BENCH_SIZE_MB:-1024}
memory=${STRATA_BENCH_MEMORY:-512M}
par_mb=${STRATA_BENCH_PAR_MB:-$((size_mb < 256 ? size_mb : 256))}
files=${STRATA_BENCH_FILES:-10000}
fio_s=${STRATA_BENCH_FIO_SECONDS:-10}
rounds=${STRATA_BENCH_TTFB_ROUNDS:-3}
ttl=${STRATA_BENCH_ATTR_TTL:-30}
read -ra mount_opts <<<"${STRATA_BENCH_MOUNT_OPTS:-}"
# --memory-cache in MiB (strata's units: K, M, G, T are powers of 1024).
mem_mib=$(awk -v s="$memory" 'BEGIN {
  n = s + 0; u = toupper(s); sub(/^[0-9.]+/, "", u); sub(/I?B$/, "", u)
  f = u == "" ? 1 / 1048576 : u == "K" ? 1 / 1024 : u == "M" ? 1 : u == "G" ? 1024 : u == "T" ? 1048576 : -1
  print f < 0 ? -1 : int(n * f) }')
((mem_mib >= 2)) || { echo "read_path: cannot read STRATA_BENCH_MEMORY=$memory (e.g. 512M)" >&2; exit 1; }
budget=$((mem_mib + 64))
bytes=$((size_mb << 20)) par_bytes=$((par_mb << 20))
rand_big_mb=$((mem_mib * 2)) rand_small_mb=$((mem_mib / 2))

bench_init read_path strata-bench-read
command -v python3 >/dev/null || die "no python3"
if ! command -v fio >/dev/null; then
  echo "read_path: installing fio"
  apt-get install -y --no-install-recommends fio >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends fio >/dev/null 2>&1; } ||
    echo "read_path: no fio: the random-read rows stay empty" >&2
fi
# The in-memory OSD holds every object once (plus room for radosgw's own).
bench_endpoint $((size_mb + 4 * par_mb + rand_big_mb + rand_small_mb + 1024))
curl_auth
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- data: each object also as a local file, in the temp dir --------------------------------
need_mib=$((2 * (size_mb + 4 * par_mb + rand_big_mb + rand_small_mb) + 256))  # files and cache
free_mib=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
((free_mib > need_mib)) || die "$work has $free_mib MiB free, the local files and the cache need $need_mib"
data=$work/data
mkdir -p "$data"
echo "read_path: seeding bucket $bucket on $ep: ${size_mb} MiB, 4 x ${par_mb} MiB," \
  "${rand_big_mb} + ${rand_small_mb} MiB, $files small objects"
S mb
put_random() {  # put_random KEY MIB: a random object, and the same bytes in $data/KEY
  head -c $(($2 << 20)) /dev/urandom >"$data/$1"
  S put "$1" "$data/$1"
}
put_random big.bin "$size_mb"
for i in 0 1 2 3; do put_random "par$i.bin" "$par_mb"; done
put_random rand-big.bin "$rand_big_mb"
put_random rand-small.bin "$rand_small_mb"
S many many/ "$files"
python3 - "$data/many" "$files" <<'PY'  # the same names and bodies as strata_seed many
import os, sys
where, count = sys.argv[1], int(sys.argv[2])
os.makedirs(where)
for i in range(count):
    name = "f%06d" % i
    with open(os.path.join(where, name), "w") as f:
        f.write("object " + name + "\n")
PY

# --- helpers ---------------------------------------------------------------------------------
cache=$work/cache
pid=""
declare -A base  # counters at the start of a workload
# mount_here [CACHE_DIR] [OPTION...]: mount with --memory-cache and the extra options, then
# reset the daemon's peak RSS and take the counters.
mount_here() {
  local dir=${1:-$cache}; shift || true
  mount_strata "$dir" --memory-cache "$memory" "${mount_opts[@]}" "$@"
  pid=$(daemon_pid)
  start_workload
}
# fresh_mount [OPTION...]: a new, empty cache dir.
fresh_mount() { unmount; rm -rf "$cache"; mount_here "$cache" "$@"; }
start_workload() {  # page cache dropped, peak RSS reset, counters taken
  drop_caches
  reset_peak_rss "$pid"
  local k v
  while read -r k v; do base[$k]=$v; done < <("$strata" stats "$mnt")
}
delta() { echo $(($(stat_of "$1") - ${base[$1]:-0})); }
counters() {  # a note of what the workload cost, from the counters
  local out="" k
  for k in "$@"; do out+="$k $(delta "$k"), "; done
  echo "${out%, }"
}
# fill_disk_tier CACHE_DIR KEY: read KEY through mounts on CACHE_DIR until a whole pass makes no
# GET (chunks the disk writer dropped are written by a later pass); at most 4 passes.
fill_disk_tier() {
  local dir=$1 key=$2 gets
  unmount
  rm -rf "$dir"
  for _ in 1 2 3 4; do
    mount_here "$dir"
    cat "$mnt/$key" >/dev/null
    gets=$(delta s3_gets)
    unmount
    ((gets > 0)) || return 0
  done
  echo "read_path: $key still made $gets GETs on the 4th pass: not all chunks are on disk" >&2
}
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
curl_get() {  # curl_get KEY [RANGE]: one GET to /dev/null; prints "bytes time_total"
  curl -sSf -K "$work/auth.cfg" -o /dev/null -w '%{size_download} %{time_total}\n' \
    ${2:+-r "$2"} "$ep/$bucket/$1"
}
timed_cat() {  # timed_cat FILE BYTES: MB/s of cat FILE >/dev/null
  local t0 t1
  t0=$(now)
  cat "$1" >/dev/null
  t1=$(now)
  mbps "$2" "$t0" "$t1"
}
direct=1
fio_iops() {  # fio_iops FILE JOBS: IOPS of random 4 KiB reads
  command -v fio >/dev/null || { echo -; return; }
  fio --name=randread --filename="$1" --readonly --rw=randread --bs=4k --ioengine=psync \
    --direct="$direct" --numjobs="$2" --time_based --runtime="$fio_s" --group_reporting \
    --minimal | awk -F';' '{ printf "%.0f\n", $8 }'
}

# rows: label | strata | reference label | reference | higher is better (1) | peak RSS | note
labels=() s_vals=() r_labels=() r_vals=() rss=() notes=()
row() {
  labels+=("$1") s_vals+=("$2") r_labels+=("$3") r_vals+=("$4") rss+=("$5") notes+=("$6")
  printf '%-52s strata %10s | %-22s %10s | ratio %5s | RSS %5s MiB | %s\n' "$1" "$2" "$3" "$4" \
    "$(ratio "$2" "$4")" "$5" "$6"
}
ratio() {
  if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && awk -v r="$2" 'BEGIN { exit !(r > 0) }'; then
    calc %.2f "$1 / $2"
  else
    echo -
  fi
}

echo
echo "read_path: measuring (budget for the daemon's peak RSS: --memory-cache $memory + 64 MiB = $budget MiB)"

# --- cold sequential --------------------------------------------------------------------------
drop_caches
t0=$(now)
read -r got _ < <(curl_get big.bin)
t1=$(now)
[[ $got == "$bytes" ]] || die "curl read $got bytes of big.bin, expected $bytes"
curl_mbps=$(mbps "$bytes" "$t0" "$t1")
fresh_mount
s_mbps=$(timed_cat "$mnt/big.bin" "$bytes")
row "cold sequential read, ${size_mb} MiB, MB/s" "$s_mbps" "one curl GET" "$curl_mbps" \
  "$(peak_rss_mib "$pid")" "$(counters s3_gets disk_write_drops)"
unmount

# --- warm sequential from the disk tier -------------------------------------------------------
((size_mb > mem_mib)) ||
  echo "read_path: the ${size_mb} MiB object fits the ${mem_mib} MiB memory tier: raise STRATA_BENCH_SIZE_MB" >&2
fill_disk_tier "$cache" big.bin
mount_here
s_mbps=$(timed_cat "$mnt/big.bin" "$bytes")
rss_now=$(peak_rss_mib "$pid") note=$(counters s3_gets disk_hits memory_hits)
unmount
drop_caches
row "warm sequential read from the disk tier, MB/s" "$s_mbps" "cat of a local file" \
  "$(timed_cat "$data/big.bin" "$bytes")" "$rss_now" "$note"

# --- random 4 KiB reads -----------------------------------------------------------------------
fill_disk_tier "$cache" rand-big.bin
mount_here
dd if="$mnt/rand-big.bin" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null || {
  direct=0
  echo "read_path: the mount refuses O_DIRECT: fio runs with direct=0 (on the local file too)" >&2
}
for jobs in 1 4; do
  start_workload
  s_iops=$(fio_iops "$mnt/rand-big.bin" "$jobs")
  rss_now=$(peak_rss_mib "$pid") note=$(counters s3_gets disk_hits memory_hits)
  drop_caches
  row "random 4 KiB, ${rand_big_mb} MiB file on disk, $jobs job(s), IOPS" "$s_iops" \
    "local file" "$(fio_iops "$data/rand-big.bin" "$jobs")" "$rss_now" "$note"
done
unmount
fresh_mount
cat "$mnt/rand-small.bin" >/dev/null  # into the memory tier
for jobs in 1 4; do
  start_workload
  s_iops=$(fio_iops "$mnt/rand-small.bin" "$jobs")
  rss_now=$(peak_rss_mib "$pid") note=$(counters s3_gets disk_hits memory_hits)
  drop_caches
  row "random 4 KiB, ${rand_small_mb} MiB file in memory, $jobs job(s), IOPS" "$s_iops" \
    "local file" "$(fio_iops "$data/rand-small.bin" "$jobs")" "$rss_now" "$note"
done
unmount

# --- time to first byte of a cold object ------------------------------------------------------
s_ms=() c_ms=() rss_max=0
for ((r = 0; r < rounds; r++)); do
  read -r got secs_total < <(curl_get big.bin 0-4095)
  [[ $got == 4096 ]] || die "a ranged curl GET read $got bytes, expected 4096"
  c_ms+=("$(calc %.1f "$secs_total * 1000")")
  fresh_mount
  s_ms+=("$(python3 - "$mnt/big.bin" <<'PY'
import os, sys, time
t0 = time.perf_counter()
fd = os.open(sys.argv[1], os.O_RDONLY)
got = os.pread(fd, 4096, 0)
t1 = time.perf_counter()
os.close(fd)
if len(got) != 4096:
    sys.exit("read %d bytes, expected 4096" % len(got))
print("%.1f" % ((t1 - t0) * 1000))
PY
  )")
  r_rss=$(peak_rss_mib "$pid")
  ((r_rss <= rss_max)) || rss_max=$r_rss
  note=$(counters s3_gets s3_bytes)
  unmount
done
row "time to first 4 KiB of a cold ${size_mb} MiB object, ms" "$(median <<<"${s_ms[*]}")" \
  "4 KiB ranged curl GET" "$(median <<<"${c_ms[*]}")" "$rss_max" \
  "median of $rounds: strata ${s_ms[*]}, curl ${c_ms[*]}; last round $note"

# --- 4 cold readers at once -------------------------------------------------------------------
pids=()
t0=$(now)
for i in 0 1 2 3; do curl_get "par$i.bin" >"$work/par$i.out" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "a parallel curl GET failed"; done
t1=$(now)
for i in 0 1 2 3; do
  read -r got _ <"$work/par$i.out"
  [[ $got == "$par_bytes" ]] || die "curl read $got bytes of par$i.bin, expected $par_bytes"
done
curl_mbps=$(mbps $((4 * par_bytes)) "$t0" "$t1")
fresh_mount
pids=()
t0=$(now)
for i in 0 1 2 3; do cat "$mnt/par$i.bin" >/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "a parallel read through strata failed"; done
t1=$(now)
row "4 cold readers of 4 x ${par_mb} MiB at once, MB/s" "$(mbps $((4 * par_bytes)) "$t0" "$t1")" \
  "4 curl GETs at once" "$curl_mbps" "$(peak_rss_mib "$pid")" "$(counters s3_gets disk_write_drops)"
unmount

# --- ls -l, warm -------------------------------------------------------------------------------
fresh_mount --attr-ttl "$ttl"
t0=$(now)
ls -l "$mnt/many" >"$work/listing"
t1=$(now)
listed=$(grep -c '^-' "$work/listing") || true
[[ $listed == "$files" ]] || die "ls -l through strata listed $listed files, expected $files"
cold_s=$(secs "$t0" "$t1")
ls -l "$mnt/many" >/dev/null  # again: entries the cold listing saw more than --attr-ttl ago
start_workload
t0=$(now)
ls -l "$mnt/many" >/dev/null
t1=$(now)
s_s=$(secs "$t0" "$t1")
rss_now=$(peak_rss_mib "$pid") note="cold listing $cold_s s; warm: $(counters metadata_list_requests metadata_head_requests)"
unmount
ls -l "$data/many" >/dev/null
ls -l "$data/many" >/dev/null
t0=$(now)
ls -l "$data/many" >/dev/null
t1=$(now)
row "ls -l of $files entries, warm, s" "$s_s" "local directory" "$(secs "$t0" "$t1")" "$rss_now" "$note"

# --- the table ---------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "## strata read path, $(date -u +%Y-%m-%d), $(nproc) cores, load average $load_start at the start, $load_end at the end"
echo
echo "\`$command_line\`"
echo
server=$ep
[[ -z $own_rgw ]] || server="radosgw $(radosgw --version 2>/dev/null | awk '{ print $3 }') (memstore) on loopback"
echo "strata $("$strata" --version) ($strata; this checkout: $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')), --memory-cache $memory${STRATA_BENCH_MOUNT_OPTS:+, $STRATA_BENCH_MOUNT_OPTS};" \
  "S3: $server;" \
  "$(curl --version | awk 'NR == 1 { print $1, $2 }'); $(command -v fio >/dev/null && fio --version || echo 'no fio');" \
  "fio direct=$direct. MB = 10^6 bytes. Ratio = strata / reference: above 1 is better for MB/s" \
  "and IOPS, below 1 is better for ms and s. Peak RSS: the daemon's VmHWM in that workload;" \
  "budget --memory-cache + 64 MiB = $budget MiB."
echo
echo "| workload | strata | reference | | strata / reference | peak RSS, MiB |"
echo "|---|---:|---|---:|---:|---:|"
for i in "${!labels[@]}"; do
  over=""
  [[ ! ${rss[i]} =~ ^[0-9]+$ ]] || ((rss[i] <= budget)) || over=" (over)"
  echo "| ${labels[i]} | ${s_vals[i]} | ${r_labels[i]} | ${r_vals[i]} | $(ratio "${s_vals[i]}" "${r_vals[i]}") | ${rss[i]}${over} |"
done
echo
echo "Counters (strata stats deltas) of each strata measurement:"
for i in "${!labels[@]}"; do echo "- ${labels[i]}: ${notes[i]}"; done
