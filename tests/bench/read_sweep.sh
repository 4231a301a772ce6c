#!/usr/bin/env bash
# The EXIT trap and helpers look unreachable to shellcheck.
# shellcheck disable=SC2317
# Read-path settings by measurement (issue 11): for each set of mount options, the cold and the
# warm sequential read of one SIZE object, next to one curl GET of it measured before and after
# the sweep in the same run. Prints figures; asserts nothing.
#   cold: `cat` through a fresh mount (new, empty cache dir, page cache dropped), MB/s
#   warm: remounted on the same cache dir (empty memory tier), page cache dropped, `cat`, MB/s,
#         with the GETs it still made (chunks the disk writer dropped during the cold read)
# Needs root (drops the page cache) and /dev/fuse. Env: STRATA_BENCH_SIZE_MB (1024);
# STRATA_BENCH_MEMORY (512M) --memory-cache; STRATA_SWEEP: option sets separated by ';'
# (default: the chunk sizes 4M 8M 16M and the read-ahead windows 16M 64M 128M);
# STRATA_BENCH_BUILD, STRATA_BENCH_ENDPOINT and the keys as in read_path.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

size_mb=${STRATA_BENCH_SIZE_MB:-1024}
memory=${STRATA_BENCH_MEMORY:-512M}
sweep=${STRATA_SWEEP:---chunk-size 4M;--chunk-size 8M;--chunk-size 16M;--max-readahead 16M;--max-readahead 64M;--max-readahead 128M}
bytes=$((size_mb << 20))

bench_init read_sweep strata-bench-sweep
bench_endpoint $((size_mb + 1024))
curl_auth
S mb
head -c "$bytes" /dev/urandom >"$work/big.bin"
S put big.bin "$work/big.bin"
rm -f "$work/big.bin"
cache=$work/cache

curl_mbps() {
  local t
  t=$(curl -sSf -K "$work/auth.cfg" -o /dev/null -w '%{time_total}' "$ep/$bucket/big.bin")
  calc %.0f "$bytes / $t / 1e6"
}
timed_cat() {
  local t0 t1
  t0=$(now)
  cat "$mnt/big.bin" >/dev/null
  t1=$(now)
  mbps "$bytes" "$t0" "$t1"
}
gets() { "$strata" stats "$mnt" | awk '$1 == "s3_gets" { print $2 }'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
drop_caches
curl_before=$(curl_mbps)
printf '%-28s %10s %10s %10s\n' "options" "cold MB/s" "warm MB/s" "warm GETs"
IFS=';' read -ra sets <<<"$sweep"
for set in "${sets[@]}"; do
  read -ra opts <<<"$set"
  unmount
  rm -rf "$cache"
  mount_strata "$cache" --memory-cache "$memory" "${opts[@]}"
  drop_caches
  cold=$(timed_cat)
  unmount
  mount_strata "$cache" --memory-cache "$memory" "${opts[@]}"
  drop_caches
  warm=$(timed_cat)
  printf '%-28s %10s %10s %10s\n' "$set" "$cold" "$warm" "$(gets)"
done
unmount
drop_caches
curl_after=$(curl_mbps)
echo "one curl GET of the same object: $curl_before MB/s before the sweep, $curl_after after"
echo "${size_mb} MiB object, --memory-cache $memory; load average $load_start at the start," \
  "$(cut -d' ' -f1-3 /proc/loadavg) at the end; $(nproc) cores"
