#!/usr/bin/env bash
# Read-path benchmark: strata through a real FUSE mount next to curl and a local file, on the
# same local S3 server, in one run. A benchmark prints figures; it asserts nothing.
#   cold sequential read of a SIZE object: strata (fresh cache, page cache dropped) vs one curl
#     stream of the same object; again with the disk tier on tmpfs
#   warm sequential read from the disk tier (remounted, page cache dropped) vs `cat` of the same
#     bytes from a local file (page cache dropped)
#   random 4 KiB O_DIRECT reads of the warm file, 1 and 4 threads (IOPS)
#   `ls -l` of a directory of 10,000 objects, cold (fresh mount) and warm (again)
#   time to first byte of a cold SIZE object
#   peak RSS (VmHWM) of the daemon during the cold read, next to its memory-cache budget
# MB = 10^6 bytes. Needs root (drops the page cache) and a running S3 server:
#   STRATA_BENCH_ENDPOINT (http://127.0.0.1:7480), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
#   STRATA_BENCH_SIZE_MB (1024), STRATA_BENCH_BUILD (build), STRATA_BENCH_MEMORY (512M).
# Start a server with: bash tests/s3/rgw.sh start (test credentials testkey / testsecret).
set -euo pipefail
cd "$(dirname "$0")/../.."
ep=${STRATA_BENCH_ENDPOINT:-http://127.0.0.1:7480}
size_mb=${STRATA_BENCH_SIZE_MB:-1024}
build=${STRATA_BENCH_BUILD:-build}
memory=${STRATA_BENCH_MEMORY:-512M}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testkey} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testsecret}
strata=$build/tools/strata seed=$build/tests/strata_seed random=$build/tests/bench/strata_bench_random
bucket=strata-bench-read
work=$(mktemp -d /tmp/strata-bench.XXXXXX)
mnt=$work/mnt cache=$work/cache
mkdir -p "$mnt"
S() { "$seed" --endpoint "$ep" --bucket "$bucket" "$@"; }
unmount() {
  grep -qs " $mnt fuse" /proc/mounts || return 0
  umount "$mnt"
  for _ in $(seq 100); do grep -qs " $mnt fuse" /proc/mounts || return 0; sleep 0.1; done
}
cleanup() { unmount; S rm "" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
mount_strata() { "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" --memory-cache "$memory" "$@"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
mbps() { echo "scale=0; $1 / ($3 - $2) / 1000000" | bc; }  # bytes start end
daemon_pid() { pgrep -n -f "strata mount s3://$bucket $mnt"; }

bytes=$((size_mb << 20))
echo "seeding: ${size_mb} MiB object and 10,000 small objects..."
S mb
head -c "$bytes" /dev/urandom >"$work/object.bin"
S put big.bin "$work/object.bin"
S put big2.bin "$work/object.bin"
S many many/ 10000

printf '\n%-58s %12s\n' "workload" "result"
line() { printf '%-58s %12s\n' "$1" "$2"; }

# Cold sequential: curl, then strata.
drop_caches
t0=$(now)
curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$ep/$bucket/big.bin"
t1=$(now)
line "cold sequential ${size_mb} MiB, one curl stream (MB/s)" "$(mbps "$bytes" "$t0" "$t1")"
mount_strata
drop_caches
pid=$(daemon_pid)
t0=$(now)
cat "$mnt/big.bin" >/dev/null
t1=$(now)
line "cold sequential ${size_mb} MiB, strata (MB/s)" "$(mbps "$bytes" "$t0" "$t1")"
hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
line "  daemon peak RSS (MiB), memory cache budget $memory" "$hwm"
line "  chunks not written to the cache disk (it fell behind)" "$("$strata" stats "$mnt" | awk '$1 == "disk_write_drops" {print $2}')"

unmount
# The same cold read with the disk tier on tmpfs: what the network path does when the cache disk
# is not the slower side (chunk files are fsynced, and this machine's disk writes ~300 MB/s).
if [[ -d /dev/shm ]]; then
  shm_cache=$(mktemp -d /dev/shm/strata-bench.XXXXXX)
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$shm_cache" --memory-cache "$memory"
  drop_caches
  t0=$(now)
  cat "$mnt/big.bin" >/dev/null
  t1=$(now)
  line "cold sequential ${size_mb} MiB, strata, cache on tmpfs (MB/s)" "$(mbps "$bytes" "$t0" "$t1")"
  unmount
  rm -rf "$shm_cache"
fi
mount_strata

# Time to first byte of another cold object.
drop_caches
t0=$(now)
head -c 1 "$mnt/big2.bin" >/dev/null
t1=$(now)
line "time to first byte, cold ${size_mb} MiB object (ms)" "$(echo "($t1 - $t0) * 1000 / 1" | bc)"

# Fill the disk tier completely (a second read writes what the first dropped), then remount.
cat "$mnt/big.bin" >/dev/null
unmount
mount_strata
cat "$mnt/big.bin" >/dev/null  # chunks the first pass could not write reach the disk now
unmount
mount_strata
drop_caches
t0=$(now)
cat "$mnt/big.bin" >/dev/null
t1=$(now)
line "warm sequential from the disk tier, strata (MB/s)" "$(mbps "$bytes" "$t0" "$t1")"
line "  of which from S3 (GETs)" "$("$strata" stats "$mnt" | awk '$1 == "s3_gets" {print $2}')"
drop_caches
t0=$(now)
cat "$work/object.bin" >/dev/null
t1=$(now)
line "sequential read of a local file with cat (MB/s)" "$(mbps "$bytes" "$t0" "$t1")"

# Random reads on the warm file (memory and disk tiers).
cat "$mnt/big.bin" >/dev/null
line "random 4 KiB reads, warm, 1 thread (IOPS)" "$("$random" "$mnt/big.bin" 1 5)"
line "random 4 KiB reads, warm, 4 threads (IOPS)" "$("$random" "$mnt/big.bin" 4 5)"
line "random 4 KiB reads, local file, 1 thread (IOPS)" "$("$random" "$work/object.bin" 1 5)"
line "random 4 KiB reads, local file, 4 threads (IOPS)" "$("$random" "$work/object.bin" 4 5)"
unmount

# ls -l of 10,000 entries.
mount_strata
t0=$(now)
ls -l "$mnt/many" >/dev/null
t1=$(now)
line "ls -l of 10,000 objects, cold (s)" "$(echo "scale=3; ($t1 - $t0) / 1" | bc)"
t0=$(now)
ls -l "$mnt/many" >/dev/null
t1=$(now)
line "ls -l of 10,000 objects, warm (s)" "$(echo "scale=3; ($t1 - $t0) / 1" | bc)"
line "  LIST requests for both" "$("$strata" stats "$mnt" | awk '$1 == "metadata_list_requests" {print $2}')"
unmount
