#!/usr/bin/env bash
# Write-path benchmark: strata through a real FUSE mount next to curl, on the same local S3 server,
# in one run. A benchmark prints figures; it asserts nothing (it fails only when it cannot measure).
#   one SIZE file, written with dd bs=1M from a random file in RAM (/dev/shm):
#     curl      one PUT of the same bytes (curl -T, one stream), until the response
#     strata    until close returns (durable locally), and until it is in S3 (queue_depth polled
#               every 20 ms until 0)
#     strata --sync-upload   until close returns, which is when it is in S3
#   FILES files of 4 KiB, written by one process (open, write, close each):
#     strata    files/s until the last close returns, and until all are in S3
#     strata --sync-upload   files/s until the last close returns
#     curl      the same PUTs sequentially from one curl process (one connection)
# "vs curl" is the time divided by curl's time for the same bytes (> 1: slower than curl).
# MB = 10^6 bytes. Needs root (FUSE). Env:
#   WRITE_MB (1024) size of the large file in MiB; STRATA_BENCH_FILES (1000);
#   STRATA_BENCH_BUILD (build); STRATA_BENCH_ENDPOINT, else STRATA_TEST_ENDPOINT (loopback only),
#   else a radosgw started here on a free loopback port with tests/s3/rgw.sh and stopped at exit;
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default: STRATA_TEST_* keys, else testkey/testsecret).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
write_mb=${WRITE_MB:-1024}
files=${STRATA_BENCH_FILES:-1000}
bytes=$((write_mb << 20))
bench_init write_path strata-bench-write
# The in-memory OSD holds the three large objects and the small ones.
bench_endpoint $((write_mb * 3 + 1024))
curl_auth

echo "preparing: ${write_mb} MiB random file, bucket $bucket on $ep"
S mb
src=$(mktemp "$(ram_dir "$bytes")/strata-bench-write.XXXXXX")
bench_rm+=("$src")
head -c "$bytes" /dev/urandom >"$src"

rows=()
row() { rows+=("$(printf '| %-58s | %9s | %11s | %7s |' "$1" "$2" "$3" "$4")"); }
fps() { calc %.0f "$1 / ($3 - $2)"; }         # count start end
ratio() { calc %.2f "($2 - $1) / $3"; }       # start end curl_seconds

# --- one large file ---------------------------------------------------------------------------
# Warm-up: the first object written to a fresh radosgw also creates its data pool (seconds).
head -c $((8 << 20)) "$src" >"$work/warmup.bin"
curl -sSf -o /dev/null -K "$work/auth.cfg" -T "$work/warmup.bin" "$ep/$bucket/warmup.bin"
# So does the first multipart upload (its pool): warm that up too, outside the measurements.
head -c $((80 << 20)) "$src" >"$work/warmup-mp.bin"
S put warmup-mp.bin "$work/warmup-mp.bin"
rm -f "$work/warmup.bin" "$work/warmup-mp.bin"
t0=$(now)
curl -sSf -o /dev/null -K "$work/auth.cfg" -T "$src" "$ep/$bucket/curl.bin"
t1=$(now)
curl_s=$(secs "$t0" "$t1")
row "curl PUT of ${write_mb} MiB, one stream" "$(secs "$t0" "$t1")" "$(mbps "$bytes" "$t0" "$t1") MB/s" "1.00"

mount_strata "$work/cache"
t0=$(now)
dd if="$src" of="$mnt/big.bin" bs=1M status=none
t1=$(now)
wait_in_s3
t2=$(now)
row "strata write ${write_mb} MiB, until close returns" "$(secs "$t0" "$t1")" "$(mbps "$bytes" "$t0" "$t1") MB/s" "$(ratio "$t0" "$t1" "$curl_s")"
row "strata write ${write_mb} MiB, until in S3" "$(secs "$t0" "$t2")" "$(mbps "$bytes" "$t0" "$t2") MB/s" "$(ratio "$t0" "$t2" "$curl_s")"
unmount

mount_strata "$work/cache" --sync-upload
t0=$(now)
dd if="$src" of="$mnt/big-sync.bin" bs=1M status=none
t1=$(now)
row "strata --sync-upload ${write_mb} MiB, until close (in S3)" "$(secs "$t0" "$t1")" "$(mbps "$bytes" "$t0" "$t1") MB/s" "$(ratio "$t0" "$t1" "$curl_s")"
unmount

# --- many small files --------------------------------------------------------------------------
# make_files DIR: FILES files of 4 KiB (distinct contents) by one process; prints its seconds.
make_files() {
  python3 - "$1" "$files" <<'PY'
import os, sys, time
where, count = sys.argv[1], int(sys.argv[2])
os.makedirs(where, exist_ok=True)
block = os.urandom(4096 - 16)
t0 = time.monotonic()
for i in range(count):
    fd = os.open(f"{where}/f{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"%016d" % i + block)
    os.close(fd)
print(f"{time.monotonic() - t0:.6f}")
PY
}

# curl: the same PUTs from one process over one connection.
make_files "$work/small" >/dev/null
for ((i = 0; i < files; i++)); do
  ((i == 0)) || echo next
  cat "$work/auth.cfg"
  printf 'upload-file = "%s/small/f%06d"\nurl = "%s/%s/curl-small/f%06d"\noutput = "/dev/null"\n' \
    "$work" "$i" "$ep" "$bucket" "$i"
done >"$work/small.cfg"
t0=$(now)
curl -sSf -K "$work/small.cfg"
t1=$(now)
curl_small_s=$(secs "$t0" "$t1")
row "curl ${files} PUTs of 4 KiB, one process, one connection" "$(secs "$t0" "$t1")" "$(fps "$files" "$t0" "$t1") files/s" "1.00"

mount_strata "$work/cache"
t0=$(now)
make_files "$mnt/small" >/dev/null
t1=$(now)
wait_in_s3
t2=$(now)
row "strata ${files} x 4 KiB files, until the last close" "$(secs "$t0" "$t1")" "$(fps "$files" "$t0" "$t1") files/s" "$(ratio "$t0" "$t1" "$curl_small_s")"
row "strata ${files} x 4 KiB files, until all in S3" "$(secs "$t0" "$t2")" "$(fps "$files" "$t0" "$t2") files/s" "$(ratio "$t0" "$t2" "$curl_small_s")"
unmount

mount_strata "$work/cache" --sync-upload
t0=$(now)
make_files "$mnt/small-sync" >/dev/null
t1=$(now)
row "strata --sync-upload ${files} x 4 KiB, until the last close" "$(secs "$t0" "$t1")" "$(fps "$files" "$t0" "$t1") files/s" "$(ratio "$t0" "$t1" "$curl_small_s")"
unmount

# What the rows claim is in S3 must be there.
for key in big.bin big-sync.bin; do
  size=$(S head "$key" | awk '$1 == "size" { print $2 }')
  [[ $size == "$bytes" ]] || die "$key in S3 has ${size:-no} size, expected $bytes"
done
for prefix in small/ small-sync/; do
  n=$(S ls "$prefix" | grep -vc '/$')  # not the directory's marker
  [[ $n -eq $files ]] || die "$n objects under $prefix, expected $files"
done

echo
echo "write path, $ep, MB = 10^6 bytes; vs curl = time / curl's time for the same bytes"
printf '| %-58s | %9s | %11s | %7s |\n' workload seconds rate "vs curl"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..11})" \
  "$(printf -- '-%.0s' {1..13})" "$(printf -- '-%.0s' {1..9})"
printf '%s\n' "${rows[@]}"
