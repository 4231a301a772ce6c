#!/usr/bin/env bash
# Metadata benchmark: what `ls -l` and chmod cost through a real FUSE mount, on a local S3
# server, in one run. A benchmark prints figures; it asserts nothing (it fails only when it
# cannot measure).
#   `ls -l` of a directory of N small objects, side by side for two sets:
#     plain   written with `strata_seed many` (no user metadata: strata shows its defaults)
#     s3fs    written through a strata mount, mode 0640 (s3fs attributes in x-amz-meta-*)
#   for each of the default options and --head-attrs:
#     cold      a fresh mount with a new, empty cache dir; the first `ls -l DIR`
#     warm      the second `ls -l DIR` (within --attr-ttl)
#     expired   again after --attr-ttl (+1 s) has passed
#     remount   unmounted, mounted again with the same cache dir and options; `ls -l DIR`
#   and, for the s3fs set, the cache dir of the mount that wrote the files (default options).
#   Each: wall seconds of `ls -l DIR` (lookup of DIR included), and the deltas of `strata stats`
#   metadata_head_requests, metadata_list_requests; for the s3fs set also how many of the N
#   entries the listing showed with their s3fs mode (-rw-r-----; the defaults are -rw-r--r--).
#   chmod of a CHMOD_MB file written through strata: seconds until the change is in S3 and the
#   bytes the upload queue sent for it (queue_bytes_uploaded), next to the original upload.
# MB = 10^6 bytes, MiB = 2^20. Needs /dev/fuse (and root for a radosgw of its own). Env:
#   N (10000) objects per set, e.g. N=1000 for a quick run; CHMOD_MB (1024); ATTR_TTL (30, the
#   --attr-ttl of the listing mounts: the cold and warm listings of both sets must fit in it);
#   STRATA_BENCH_BUILD (build); STRATA_BENCH_ENDPOINT, else STRATA_TEST_ENDPOINT, else a
#   radosgw started here on a free loopback port with tests/s3/rgw.sh and stopped at exit;
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default: STRATA_TEST_* keys, else testkey/testsecret).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
n=${N:-10000}
chmod_mb=${CHMOD_MB:-1024}
ttl=${ATTR_TTL:-30}
bytes=$((chmod_mb << 20))
bench_init metadata_bench strata-bench-meta
command -v python3 >/dev/null || die "no python3"
# The in-memory OSD holds the large file, its copy and the small objects.
bench_endpoint $((chmod_mb * 3 + 1024))

counters() {  # HEADs LISTs queue_bytes_uploaded s3_requests, one line
  "$strata" stats "$mnt" | awk '{ v[$1] = $2 } END {
    print v["metadata_head_requests"] + 0, v["metadata_list_requests"] + 0,
      v["queue_bytes_uploaded"] + 0, v["s3_requests"] + 0 }'
}

# ls_l DIR: `ls -l` of DIR on the mount; sets took, heads, lists and shown (entries listed with
# mode -rw-r-----).
ls_l() {
  local c0 c1 t0 t1
  read -ra c0 <<<"$(counters)"
  t0=$(now)
  ls -l "$mnt/$1" >"$work/listing" || die "ls -l $1 failed"
  t1=$(now)
  read -ra c1 <<<"$(counters)"
  took=$(secs "$t0" "$t1")
  heads=$((c1[0] - c0[0])) lists=$((c1[1] - c0[1]))
  shown=$(grep -c '^-rw-r----- ' "$work/listing")
  local listed
  listed=$(grep -c '^-' "$work/listing")
  [[ $listed -eq $n ]] || die "ls -l $1 listed $listed files, expected $n"
}
declare -A res  # "OPTIONS|PASS|SET" -> "seconds HEADs LISTs shown"
record() { res["$1|$2|$3"]="$took $heads $lists $shown"; }

echo "metadata bench: N=$n, chmod of $chmod_mb MiB, --attr-ttl $ttl, bucket $bucket on $ep"
S mb || die "cannot create the bucket"
echo "preparing: $n plain objects (strata_seed many: no user metadata)"
S many plain/ "$n" || die "strata_seed many failed"
probe=$(S head plain/f000000 | grep -c '^meta ')
[[ $probe -eq 0 ]] || die "strata_seed many set user metadata ($probe entries): the plain set is not plain"

echo "preparing: $n files of mode 0640 through a strata mount (s3fs attributes)"
mount_strata "$work/cache-writer"
t0=$(now)
python3 - "$mnt/s3fs" "$n" <<'PY' || die "writing through strata failed"
import os, sys
where, count = sys.argv[1], int(sys.argv[2])
os.makedirs(where, exist_ok=True)
old = os.umask(0o022)
for i in range(count):
    name = "f%06d" % i
    fd = os.open(f"{where}/{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    os.write(fd, b"object " + name.encode() + b"\n")
    os.close(fd)
PY
wait_in_s3
t1=$(now)
write_n_s=$(secs "$t0" "$t1")
unmount
probe=$(S head s3fs/f000000 | awk '$1 == "meta" && $2 == "mode" { print $3 }')
[[ $probe == 33184 ]] || die "s3fs/f000000 has mode '$probe' in S3, expected 33184"

sets=(plain s3fs)
for opt in default --head-attrs; do
  extra=()
  [[ $opt == default ]] || extra=("$opt")
  cache="$work/cache-${opt#--}"
  echo "measuring: ls -l, $opt"
  mount_strata "$cache" --attr-ttl "$ttl" "${extra[@]}"
  for s in "${sets[@]}"; do ls_l "$s"; record "$opt" cold "$s"; done
  for s in "${sets[@]}"; do ls_l "$s"; record "$opt" warm "$s"; done
  sleep "$(calc %.1f "$ttl + 1")"
  for s in "${sets[@]}"; do ls_l "$s"; record "$opt" expired "$s"; done
  unmount
  mount_strata "$cache" --attr-ttl "$ttl" "${extra[@]}"
  for s in "${sets[@]}"; do ls_l "$s"; record "$opt" remount "$s"; done
  unmount
done
echo "measuring: ls -l of the s3fs set with the writer's cache dir"
mount_strata "$work/cache-writer" --attr-ttl "$ttl"
ls_l s3fs; record default writer s3fs
unmount

# --- chmod of a large file ---------------------------------------------------------------------
echo "preparing: a $chmod_mb MiB random file"
src=$(mktemp "$(ram_dir "$bytes")/strata-bench-meta.XXXXXX")
bench_rm+=("$src")
head -c "$bytes" /dev/urandom >"$src" || die "cannot write $src"
echo "measuring: upload of $chmod_mb MiB, then chmod 0600 of it"
mount_strata "$work/cache-chmod"
read -ra c0 <<<"$(counters)"
t0=$(now)
cp "$src" "$mnt/big.bin" || die "cp failed"
wait_in_s3
t1=$(now)
read -ra c1 <<<"$(counters)"
up_s=$(secs "$t0" "$t1") up_bytes=$((c1[2] - c0[2])) up_reqs=$((c1[3] - c0[3]))
etag0=$(S head big.bin | awk '$1 == "etag" { print $2 }')
t0=$(now)
chmod 0600 "$mnt/big.bin" || die "chmod failed"
wait_in_s3
t1=$(now)
read -ra c2 <<<"$(counters)"
chmod_s=$(secs "$t0" "$t1") chmod_bytes=$((c2[2] - c1[2])) chmod_reqs=$((c2[3] - c1[3]))
unmount
etag1=$(S head big.bin | awk '$1 == "etag" { print $2 }')
mode=$(S head big.bin | awk '$1 == "meta" && $2 == "mode" { print $3 }')
[[ $mode == 33152 ]] || die "big.bin has mode '$mode' in S3 after chmod 0600, expected 33152"

# --- the tables --------------------------------------------------------------------------------
dashes() { printf -- '-%.0s' $(seq "$1"); }
cell() {  # cell KEY FIELD: one figure of a result, or "-"
  local r=${res[$1]:-}
  if [[ -z $r ]]; then echo -; return; fi
  awk -v f="$2" '{ print $f }' <<<"$r"
}
echo
echo "ls -l of a directory of $n objects, $ep, --attr-ttl $ttl s (wrote the s3fs set through strata in $write_n_s s)"
echo "seconds: wall time of ls -l DIR; HEAD, LIST: metadata requests it caused (strata stats);"
echo "attrs: entries shown with their s3fs mode (-rw-r-----) of $n"
printf '| %-12s | %-33s || %8s | %6s | %5s || %8s | %6s | %5s | %6s |\n' options "ls -l" \
  "plain s" HEAD LIST "s3fs s" HEAD LIST attrs
printf '|%s|%s||%s|%s|%s||%s|%s|%s|%s|\n' "$(dashes 14)" "$(dashes 35)" "$(dashes 10)" \
  "$(dashes 8)" "$(dashes 7)" "$(dashes 10)" "$(dashes 8)" "$(dashes 7)" "$(dashes 8)"
declare -A what=(
  [cold]="cold: fresh mount, new cache dir"
  [warm]="warm: second ls -l"
  [expired]="after --attr-ttl expiry"
  [remount]="remount, same cache dir"
  [writer]="remount, the writer's cache dir"
)
for opt in default --head-attrs; do
  for pass in cold warm expired remount writer; do
    [[ -n ${res[$opt|$pass|plain]:-} || -n ${res[$opt|$pass|s3fs]:-} ]] || continue
    p="$opt|$pass|plain" q="$opt|$pass|s3fs"
    printf '| %-12s | %-33s || %8s | %6s | %5s || %8s | %6s | %5s | %6s |\n' "$opt" "${what[$pass]}" \
      "$(cell "$p" 1)" "$(cell "$p" 2)" "$(cell "$p" 3)" \
      "$(cell "$q" 1)" "$(cell "$q" 2)" "$(cell "$q" 3)" "$(cell "$q" 4)"
  done
done
echo
echo "chmod of a $chmod_mb MiB file written through strata (until the change is in S3)"
printf '| %-40s | %9s | %14s | %12s |\n' operation seconds "bytes uploaded" "S3 requests"
printf '|%s|%s|%s|%s|\n' "$(dashes 42)" "$(dashes 11)" "$(dashes 16)" "$(dashes 14)"
printf '| %-40s | %9s | %14s | %12s |\n' "upload: cp, until in S3" "$up_s" "$up_bytes" "$up_reqs"
printf '| %-40s | %9s | %14s | %12s |\n' "chmod 0600, until in S3" "$chmod_s" "$chmod_bytes" "$chmod_reqs"
if [[ $etag0 == "$etag1" ]]; then
  echo "ETag unchanged by the chmod ($etag0)"
else
  echo "ETag changed by the chmod: $etag0 -> $etag1"
fi
