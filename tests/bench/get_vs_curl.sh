#!/usr/bin/env bash
# Functions called indirectly ("run_$tool", the EXIT trap) look unreachable to shellcheck.
# shellcheck disable=SC2317
# get_vs_curl.sh: single-stream ranged-GET throughput of strata's S3 backend (S3Store, through
# strata_bench_get) next to curl, on the same object, in the same run. A benchmark, not a test:
# it exits 0 whatever the numbers are, non-zero only when it could not measure.
#
# What is measured. Both tools make exactly the same requests in each mode:
#   whole   the whole object as ONE ranged GET, Range: bytes=0-(size-1). The headline number.
#   ranged  sequential ranged GETs of STRATA_BENCH_RANGE_MB MiB covering the object, one at a
#           time over one connection. curl gets all of them in one process from a -K config of
#           `next`-separated transfers, which reuse its connection (num_connects shows 1).
# A run is one process of a tool: it opens one new TCP connection, then sends the GETs in order.
# Runs alternate between the tools (and which goes first), so both see the same machine load.
#
# The numbers. MB/s with MB = 10^6 bytes: body bytes received / seconds of transfer.
#   curl    sum of %{size_download} / sum of %{time_total} over the run's transfers;
#           time_total runs from the start of a transfer (connect included) to its last byte.
#           Process start-up is not counted. The body goes to /dev/null (discarded).
#   curl-ram  the same, with the body written to a file on tmpfs (/dev/shm): the bytes end up in
#           memory, as they must for any reader that uses them.
#   strata  as strata_bench_get prints it: bytes / time from before the first Get to after the
#           last body was checked (connect included, process start-up not). Each body is
#           received into a reused buffer (GetInto), its length checked, one byte per 4 KiB read.
#   median, min, max over STRATA_BENCH_RUNS runs per tool and mode; GETs and conns are per run
#   (conns = new TCP connections); ratio = strata median / curl median (> 1: strata is faster).
#
# Environment (defaults fit tests/s3/rgw.sh on this machine):
#   STRATA_BENCH_ENDPOINT   http://127.0.0.1:7480 (path-style)
#   STRATA_BENCH_BUCKET     strata-bench (created when missing, left in place)
#   STRATA_BENCH_REGION     us-east-1
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   testkey / testsecret
#   STRATA_BENCH_SIZE_MB    object size in MiB, 256
#   STRATA_BENCH_RANGE_MB   range size of the ranged mode in MiB, 8
#   STRATA_BENCH_RUNS       runs per tool and mode, 5
#   STRATA_BENCH_BIN        strata_bench_get, default build/tests/bench/strata_bench_get
# The object (a fresh key per invocation) is seeded once with strata_bench_get --seed and
# deleted at exit: radosgw's memstore keeps it in RAM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
endpoint=${STRATA_BENCH_ENDPOINT:-http://127.0.0.1:7480}
endpoint=${endpoint%/}
bucket=${STRATA_BENCH_BUCKET:-strata-bench}
region=${STRATA_BENCH_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testkey}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testsecret}
size_mb=${STRATA_BENCH_SIZE_MB:-256}
range_mb=${STRATA_BENCH_RANGE_MB:-8}
runs=${STRATA_BENCH_RUNS:-5}
bin=${STRATA_BENCH_BIN:-$repo/build/tests/bench/strata_bench_get}
key="bench/get-vs-curl-$(hostname -s)-$$"

size=$((size_mb * 1024 * 1024))
range=$((range_mb * 1024 * 1024))
[[ -x $bin ]] || { echo "get_vs_curl: no strata_bench_get at $bin (set STRATA_BENCH_BIN)" >&2; exit 1; }
((size > 0 && range > 0 && runs > 0)) || { echo "get_vs_curl: sizes and runs must be > 0" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 700 "$tmp"
seeded=0
cleanup() {
  if ((seeded)); then
    curl -sS -o /dev/null -K "$tmp/auth.cfg" -X DELETE "$endpoint/$bucket/$key" ||
      echo "get_vs_curl: could not delete $bucket/$key" >&2
  fi
  rm -rf "$tmp" "/dev/shm/strata-get-vs-curl.$$"
}
trap cleanup EXIT

# Credentials go through config files, not the command line (the process list is public).
cat >"$tmp/auth.cfg" <<EOF
aws-sigv4 = "aws:amz:$region:s3"
user = "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"
EOF

# write_transfers FILE RANGE_BYTES OUTPUT: one curl transfer per range, in order, same connection.
write_transfers() {
  local file=$1 step=$2 out=$3 offset=0 end
  : >"$file"
  while ((offset < size)); do
    end=$((offset + step < size ? offset + step - 1 : size - 1))
    ((offset == 0)) || echo next >>"$file"
    cat "$tmp/auth.cfg" >>"$file"
    cat >>"$file" <<EOF
url = "$endpoint/$bucket/$key"
range = "$offset-$end"
output = "$out"
write-out = "%{http_code} %{size_download} %{time_total} %{num_connects}\\n"
EOF
    offset=$((end + 1))
  done
}

status=$(curl -sS -o /dev/null -w '%{http_code}' -K "$tmp/auth.cfg" -I "$endpoint/$bucket")
if [[ $status == 404 ]]; then
  status=$(curl -sS -o /dev/null -w '%{http_code}' -K "$tmp/auth.cfg" -X PUT "$endpoint/$bucket")
fi
[[ $status == 200 ]] || { echo "get_vs_curl: bucket $bucket: HTTP $status" >&2; exit 1; }

seeded=1
bench_args=(--endpoint "$endpoint" --bucket "$bucket" --key "$key" --region "$region")
"$bin" "${bench_args[@]}" --seed --size "$size" --runs 0 >/dev/null

# curl discards into /dev/null; curl-ram writes into a tmpfs file, i.e. puts the bytes in memory
# as strata_bench_get does (one copy out of the socket buffer).
ram_out=/dev/shm/strata-get-vs-curl.$$
write_transfers "$tmp/whole.cfg" "$size" /dev/null
write_transfers "$tmp/ranged.cfg" "$range" /dev/null
write_transfers "$tmp/whole-ram.cfg" "$size" "$ram_out"
write_transfers "$tmp/ranged-ram.cfg" "$range" "$ram_out"

# run_curl MODE [SUFFIX]: prints "MBps GETs conns" of one curl process, or fails.
run_curl() {
  curl -sS -K "$tmp/$1${2:-}.cfg" | awk -v size="$size" '
    $1 != 206 { print "get_vs_curl: curl got HTTP " $1 > "/dev/stderr"; exit 1 }
    { bytes += $2; seconds += $3; conns += $4; gets++ }
    END {
      if (bytes != size) { print "get_vs_curl: curl read " bytes " bytes of " size > "/dev/stderr"; exit 1 }
      printf "%.1f %d %d\n", bytes / seconds / 1e6, gets, conns
    }'
}

run_curl-ram() { run_curl "$1" -ram; rm -f "$ram_out"; }

# run_strata MODE: prints "MBps GETs conns" of one strata_bench_get process, or fails.
run_strata() {
  local range_size=$range
  [[ $1 == whole ]] && range_size=0
  "$bin" "${bench_args[@]}" --size "$size" --range-size "$range_size" --runs 1 | awk '
    /^run=/ {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      printf "%s %s %s\n", v["MBps"], v["requests"], v["connections_opened"]; found = 1
    }
    END { exit !found }'
}

for ((i = 1; i <= runs; i++)); do
  for mode in whole ranged; do
    if ((i % 2)); then order=(curl curl-ram strata); else order=(strata curl-ram curl); fi
    for tool in "${order[@]}"; do
      line=$("run_$tool" "$mode")
      echo "$line" >>"$tmp/$tool.$mode"
    done
  done
done

# summary TOOL MODE: "median min max GETs conns" (GETs and conns of the last run).
summary() {
  sort -n -k1,1 "$tmp/$1.$2" | awk '
    { v[NR] = $1; gets = $2; conns = $3 }
    END {
      median = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f %d %d\n", median, v[1], v[NR], gets, conns
    }'
}

echo "single-stream ranged GET of a $size_mb MiB object, $runs runs each, MB/s (MB = 10^6 B)"
echo "$endpoint/$bucket/$key; curl $(curl --version | awk 'NR == 1 { print $2 }')"
printf '%-8s %-13s %6s %6s %10s %10s %10s\n' tool mode GETs conns median min max
declare -A medians
for mode in whole ranged; do
  label="${range_mb} MiB ranges"
  [[ $mode == whole ]] && label="1 x ${size_mb} MiB"
  for tool in curl curl-ram strata; do
    read -r median min max gets conns < <(summary "$tool" "$mode")
    printf '%-8s %-13s %6d %6d %10.1f %10.1f %10.1f\n' "$tool" "$label" "$gets" "$conns" \
      "$median" "$min" "$max"
    medians[$tool.$mode]=$median
  done
done
awk -v sw="${medians[strata.whole]}" -v cw="${medians[curl.whole]}" \
  -v sr="${medians[strata.ranged]}" -v cr="${medians[curl.ranged]}" -v r="$range_mb" 'BEGIN {
    printf "ratio strata/curl (median): whole object %.2f, %d MiB ranges %.2f\n", sw / cw, r, sr / cr
  }'
awk -v sw="${medians[strata.whole]}" -v cw="${medians[curl-ram.whole]}" \
  -v sr="${medians[strata.ranged]}" -v cr="${medians[curl-ram.ranged]}" -v r="$range_mb" 'BEGIN {
    printf "ratio strata/curl-ram (median): whole object %.2f, %d MiB ranges %.2f\n", sw / cw, r, sr / cr
  }'
exit 0
