#!/usr/bin/env bash
# Read-path tests through a real FUSE mount of a bucket on the local S3 server: nested and
# implicit directories, empty files, odd names, a 1 GiB file, concurrent readers, another
# client's overwrite, remount with zero GETs, a corrupted chunk, a deleted index, the disk limit
# under load, `ls -l` of 10,000 entries, the fstab form, and clear errors for bad starts.
# The counters of `strata stats` prove where the bytes came from.
# Env: STRATA_TEST_BIG_MB (1024): size of the large file. STRATA_TEST_QUICK=1 (the sanitizer
# builds in CI): the large file defaults to 256 MiB and the listing has 2,000 entries, not 10,000.
# Usage: mount_test.sh STRATA_BIN SEED_BIN   (skips with 77 without a test server or /dev/fuse)
set -uo pipefail
strata=$1 seed=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require fuse
use_test_server
bucket="strata-mount-$$"
big_mb=${STRATA_TEST_BIG_MB:-1024} many=10000
[[ ${STRATA_TEST_QUICK:-0} == 1 ]] && big_mb=${STRATA_TEST_BIG_MB:-256} many=2000
work=$(mktemp -d /tmp/strata-mount-test.XXXXXX)
mnt=$work/mnt cache=$work/cache src=$work/src
mkdir -p "$mnt" "$src"
trap remove_mount_and_bucket EXIT
ttl=1  # short, so that another client's change shows quickly
mount_strata() {  # daemonizes once the mount is live; read-only (the write path has its own test)
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" --attr-ttl "$ttl" \
    --read-only "$@"
}

echo "== seeding s3://$bucket"
S mb || exit 1
head -c 1000 /dev/urandom >"$src/small.bin"
: >"$src/empty"
echo "deep" >"$src/deep.txt"
head -c $((64 << 20)) /dev/urandom >"$src/conc.bin"
head -c $((big_mb << 20)) /dev/urandom >"$src/big.bin"
S put small.bin "$src/small.bin"
S put empty "$src/empty"
S put dir/sub/deep.txt "$src/deep.txt"
S put implicit/a/b/c.txt "$src/deep.txt"
S put marker-only/ "$src/empty"
S put "with space/file name.txt" "$src/deep.txt"
S put "ünïcödé/文件.txt" "$src/deep.txt"
S put "bad//double" "$src/deep.txt"
printf 'dir/sub/deep.txt' >"$src/link-target"
S put attrs/link "$src/link-target" --meta mode=41471  # s3fs symlink: S_IFLNK | 0777
S put attrs/owned "$src/deep.txt" --meta mode=33184 --meta uid=4321 --meta gid=8765 --meta mtime=1600000000
S put conc.bin "$src/conc.bin"
S put big.bin "$src/big.bin"
S many many/ "$many"

echo "== bad starts fail before daemonizing, with clear words"
expect_fail() {  # expect_fail NAME TEXT -- command...
  local name=$1 text=$2; shift 3
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -ne 0 ]] && grep -qF -- "$text" <<<"$out" && ! is_mounted "$mnt"; then
    ok "$name"
  else
    bad "$name (exit $status): $out"
  fi
}
expect_fail "wrong secret" "signature mismatch" -- env AWS_SECRET_ACCESS_KEY=wrong \
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache"
expect_fail "missing bucket" "does not exist" -- \
  "$strata" mount s3://strata-no-such-bucket "$mnt" --endpoint "$ep" --cache-dir "$cache"
expect_fail "closed port" "cannot connect" -- \
  "$strata" mount "s3://$bucket" "$mnt" --endpoint http://127.0.0.1:1 --cache-dir "$cache"
expect_fail "missing mount point" "mount point" -- \
  "$strata" mount "s3://$bucket" "$work/nope" --endpoint "$ep" --cache-dir "$cache"
expect_fail "cache dir not writable" "cache directory" -- \
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$src/small.bin/cache"
expect_fail "invalid option value" "not a size" -- \
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" --cache-size lots

echo "== tree and file contents"
mount_strata || { echo "mount failed"; exit 1; }
check "mount is live after the command returns" is_mounted "$mnt"
busy=$(mount_strata 2>&1)
check "mount point busy is refused: $busy" bash -c "[[ '$busy' == *'already mounted'* ]] && grep -c ' $mnt fuse' /proc/mounts | grep -qx 1"
check "root lists files and directories" bash -c \
  "ls '$mnt' | sort | tr '\n' '|' | grep -qx 'attrs|bad|big.bin|conc.bin|dir|empty|implicit|many|marker-only|small.bin|with space|ünïcödé|'"
check "nested file" same_file "$mnt/dir/sub/deep.txt" "$src/deep.txt"
check "implicit directories" same_file "$mnt/implicit/a/b/c.txt" "$src/deep.txt"
check "directory from a marker only" bash -c "[[ -d '$mnt/marker-only' && -z \$(ls -A '$mnt/marker-only') ]]"
check "empty file" bash -c "[[ -f '$mnt/empty' && ! -s '$mnt/empty' ]]"
check "name with spaces" same_file "$mnt/with space/file name.txt" "$src/deep.txt"
check "unicode names" same_file "$mnt/ünïcödé/文件.txt" "$src/deep.txt"
check "keys that cannot be names are skipped" bash -c "[[ ! -e '$mnt/bad' ]] || ! ls -A '$mnt/bad' | grep -q ."
check "sizes from the listing" bash -c "[[ \$(stat -c %s '$mnt/small.bin') == 1000 ]]"
check "read-only: writes get EROFS" bash -c "! touch '$mnt/new' 2>/dev/null"
t0=$(date +%s.%N)
check "1 GiB file matches the object" same_file "$mnt/big.bin" "$src/big.bin"
t1=$(date +%s.%N)
echo "     (cold read of $big_mb MiB: $(echo "$big_mb * 1.048576 / ($t1 - $t0)" | bc) MB/s)"

echo "== concurrent readers share GETs"
gets0=$(stat_of s3_gets) range_gets0=$(stat_of s3_range_gets)
pids=()
for i in 1 2 3 4 5 6 7 8; do sha256sum "$mnt/conc.bin" >"$work/sum$i" & pids+=($!); done
wait "${pids[@]}"
want=$(sha256sum <"$src/conc.bin" | cut -d' ' -f1)
check "8 concurrent readers read the right bytes" bash -c \
  "for i in 1 2 3 4 5 6 7 8; do grep -q '$want' '$work/sum'\$i || exit 1; done"
# A reader's first read GETs only the blocks it needs unless the chunk is already being fetched:
# up to one such small GET per reader; the chunks themselves are fetched once.
range_gets=$(($(stat_of s3_range_gets) - range_gets0))
gets=$(($(stat_of s3_gets) - gets0 - range_gets))
chunk_gets=$((64 / 8))
check "one GET per chunk for 8 readers (got $gets, chunks $chunk_gets)" test "$gets" -eq "$chunk_gets"
check "  at most one block GET per reader (got $range_gets)" test "$range_gets" -le 8

echo "== another client's overwrite is seen after the TTL, never mixed"
cat "$mnt/small.bin" >/dev/null
head -c 3000 /dev/urandom >"$src/small2.bin"
S put small.bin "$src/small2.bin"
sleep 1.5
check "new version after the TTL" same_file "$mnt/small.bin" "$src/small2.bin"

echo "== ls -l of $many entries: one HEAD per version ever, then one LIST per 1,000 and no HEAD"
# A TTL longer than the listing takes (slow under sanitizers), or it expires and is listed again.
# The first listing learns each object version (in parallel with --head-attrs); a remount with
# the same cache directory then knows them all.
unmount
ttl=60 mount_strata --head-attrs
heads0=$(stat_of metadata_head_requests)
n=$(ls -l "$mnt/many" | grep -c '^-')
heads=$(($(stat_of metadata_head_requests) - heads0))
check "$many entries listed (got $n)" test "$n" -eq "$many"
check "  first listing: at most one HEAD per entry (got $heads)" test "$heads" -le $((many + 1))
unmount
ttl=60 mount_strata
lists0=$(stat_of metadata_list_requests) heads0=$(stat_of metadata_head_requests)
n=$(ls -l "$mnt/many" | grep -c '^-')
lists=$(($(stat_of metadata_list_requests) - lists0))
heads=$(($(stat_of metadata_head_requests) - heads0))
check "$many entries listed after a remount (got $n)" test "$n" -eq "$many"
check "  at most $((many / 1000 + 1)) LIST requests (got $lists)" test "$lists" -le $((many / 1000 + 1))
check "  no HEAD: every version is known (got $heads)" test "$heads" -eq 0

echo "== s3fs attributes and symlinks with --head-attrs"
unmount
mount_strata --head-attrs
check "s3fs mode, owner and mtime" bash -c "[[ \$(stat -c '%a %u %g %Y' '$mnt/attrs/owned') == '640 4321 8765 1600000000' ]]"
check "s3fs symlink" bash -c "[[ \$(readlink '$mnt/attrs/link') == dir/sub/deep.txt ]]"

echo "== the disk cache survives a remount"
# Chunks the cache disk could not take in time (the 1 GiB read above) were not written: read the
# 64 MiB file once more in a fresh mount, where its 8 chunks fit the default 64 MiB write queue.
unmount
mount_strata
cat "$mnt/conc.bin" >/dev/null
unmount
mount_strata
check "remount serves a cached file with zero GETs" same_file "$mnt/conc.bin" "$src/conc.bin"
check "  s3_gets is 0 (got $(stat_of s3_gets))" test "$(stat_of s3_gets)" -eq 0

echo "== a corrupted chunk is detected and fetched again"
unmount
# Corrupt one byte in the middle of every chunk file.
while read -r chunk; do
  printf 'XXXXXXXX' | dd of="$chunk" bs=1 seek=$((1 << 20)) conv=notrunc status=none
done < <(find "$cache" -type f -size +1M)
mount_strata
check "right bytes despite the corrupted chunk" same_file "$mnt/conc.bin" "$src/conc.bin"
check "  checksum failure counted" test "$(stat_of disk_checksum_failures)" -ge 1
check "  chunk refetched" test "$(stat_of s3_gets)" -ge 1

echo "== a deleted index is rebuilt from the chunk files"
unmount
rm -f "$cache"/index.db*
mount_strata
check "right bytes after the index was deleted" same_file "$mnt/conc.bin" "$src/conc.bin"
check "  zero GETs: the index was rebuilt" test "$(stat_of s3_gets)" -eq 0

echo "== the disk limit holds under a load larger than the cache"
unmount
cache=$work/cache-small
mount_strata --cache-size 48M --memory-cache 32M
check "1 GiB read through a 48 MiB disk cache" same_file "$mnt/big.bin" "$src/big.bin"
used=$(du -sb "$cache" --exclude='index.db*' | cut -f1)
check "cache holds at most 48 MiB + headers (got $used bytes)" test "$used" -le $(((48 << 20) + (1 << 20)))
check "  evictions counted" test "$(stat_of disk_evictions)" -ge 1
unmount

echo "== fstab form: strata SOURCE MOUNTPOINT -o options"
"$strata" "s3://$bucket" "$mnt" -o "rw,nodev,_netdev,endpoint=$ep,cache_dir=$cache,attr_ttl=1"
check "fstab-style mount is live" is_mounted "$mnt"
check "  and readable" same_file "$mnt/dir/sub/deep.txt" "$src/deep.txt"
unmount

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
