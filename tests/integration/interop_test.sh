#!/usr/bin/env bash
# s3fs interoperability of POSIX attributes, through real FUSE mounts of a bucket on the local S3
# server:
#   a) objects written with s3fs's headers (not through strata: the seed tool, and curl for the
#      directory marker's Content-Type) show their type, mode, owner, mtime with nanoseconds,
#      rdev and symlink target: by lookup (one HEAD each) with the default options, by `ls -l`
#      alone with --head-attrs, and after a remount with the same cache dir with zero HEADs
#      (the persistent attribute store);
#   b) a file, symlink, FIFO, character device, directory and unix socket made through strata
#      are stored exactly as s3fs stores them, and a second mount with an empty cache dir shows
#      them as the first did;
#   c) chmod of a clean 32 MiB file is a metadata change only: no body upload, same ETag/body.
# Usage: interop_test.sh STRATA_BIN SEED_BIN   (skips with 77 without a test server or /dev/fuse)
set -uo pipefail
strata=$1 seed=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require fuse python3
use_test_server
umask 022
bucket="strata-interop-$$"
work=$(mktemp -d /tmp/strata-interop-test.XXXXXX)
mnt=$work/mnt src=$work/src
mkdir -p "$mnt" "$src"
trap remove_mount_and_bucket EXIT
is_root=0
[[ $(id -u) -eq 0 ]] && is_root=1

mount_strata() {  # mount_strata CACHE_DIR [OPTION...]: daemonizes once the mount is live
  local cache=$1; shift
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" "$@"
}
queue_stuck=0
wait_uploaded() {  # until `strata stats` shows queue_depth 0; 60 s at most (10 once stuck)
  local limit=60 depth=""
  [[ $queue_stuck -eq 0 ]] || limit=10
  local deadline=$((SECONDS + limit))
  sleep 0.2  # the kernel sends RELEASE after close(2) returns: let the last one arrive
  while ((SECONDS < deadline)); do
    depth=$(quiet_stat_of queue_depth)
    [[ $depth == 0 ]] && return 0
    sleep 0.2
  done
  queue_stuck=1
  bad "upload queue empty within $limit s (queue_depth '$depth')"
  return 1
}
head_field() { S head "$1" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }
meta_of() { S head "$1" 2>/dev/null | awk -v k="$2" '$1 == "meta" && $2 == k { print $3 }'; }
has_meta() { S head "$1" 2>/dev/null | awk -v k="$2" '$1 == "meta" && $2 == k { f = 1 } END { exit !f }'; }
lacks_meta() { ! has_meta "$@"; }
in_bucket() {  # in_bucket KEY FILE: the object exists and its body equals FILE
  rm -f "$work/got"
  S get "$1" "$work/got" 2>/dev/null && cmp -s "$work/got" "$2"
}
is_nanos() { [[ $1 =~ ^[0-9]+\.[0-9]{9}$ ]]; }  # s3fs's "SECONDS.NANOSECONDS"
# What `stat` says of a name, in one line: type, mode, owner, mtime with nanoseconds, and the
# size (files, symlinks) or the device numbers (devices, as hex major:minor).
stat_line() {
  case $(stat -c %F "$1" 2>/dev/null) in
    "character special file" | "block special file") stat -c '%F|%a|%u|%g|%.9Y|%t:%T' "$1" 2>&1 ;;
    directory) stat -c '%F|%a|%u|%g|%.9Y' "$1" 2>&1 ;;
    *) stat -c '%F|%a|%u|%g|%.9Y|%s' "$1" 2>&1 ;;
  esac
}
# What `ls -ln` says of NAME in DIR: permissions, uid, gid, size or "major,minor", mtime, and
# " -> TARGET" for a symlink.
ls_line() {  # ls_line LISTING NAME: LISTING is `ls -ln --time-style=+%s.%N DIR`'s output
  awk -v n="$2" '{ gsub(/, +/, ",") } $7 == n {
    line = $1 " " $3 " " $4 " " $5 " " $6
    if ($8 == "->") line = line " -> " $9
    print line }' <<<"$1"
}
listing() { ls -ln --time-style=+%s.%N "$1" 2>&1; }
# The counters, before and after something.
heads_now() { quiet_stat_of metadata_head_requests; }

# --- the objects of a) -----------------------------------------------------------------------
# name, then what stat_line and ls_line must say on the mount.
names=(file.txt link fifo chardev d d/inner.txt)
declare -A want_stat want_ls
want_stat[file.txt]="regular file|640|1234|5678|1500000000.123456789|14"
want_stat[link]="symbolic link|777|1234|5678|1500000001.000000000|11"
want_stat[fifo]="fifo|644|1234|5678|1500000002.250000000|0"
want_stat[chardev]="character special file|600|1234|5678|1500000003.000000007|1:3"
want_stat[d]="directory|750|42|43|1500000004.987654321"
want_stat[d/inner.txt]="regular file|644|42|43|1500000005.000000000|14"
want_ls[file.txt]="-rw-r----- 1234 5678 14 1500000000.123456789"
want_ls[link]="lrwxrwxrwx 1234 5678 11 1500000001.000000000 -> target/path"
want_ls[fifo]="prw-r--r-- 1234 5678 0 1500000002.250000000"
want_ls[chardev]="crw------- 1234 5678 1,3 1500000003.000000007"
want_ls[d]="drwxr-x--- 42 43"  # a directory's size is not compared: checked as a prefix
want_ls[d/inner.txt]="-rw-r--r-- 42 43 14 1500000005.000000000"

check_stats() {  # check_stats WHAT: stat of each name of a), and readlink
  local name got
  for name in "${names[@]}"; do
    got=$(stat_line "$mnt/$name")
    check "$1: stat $name: ${want_stat[$name]} (got '$got')" test "$got" = "${want_stat[$name]}"
  done
  got=$(readlink "$mnt/link" 2>&1)
  check "$1: readlink link: target/path (got '$got')" test "$got" = target/path
}
check_listings() {  # check_listings WHAT: `ls -ln` of / and of d/ only
  local top sub name got
  top=$(listing "$mnt") sub=$(listing "$mnt/d")
  for name in "${names[@]}"; do
    if [[ $name == d/* ]]; then got=$(ls_line "$sub" "${name#d/}"); else got=$(ls_line "$top" "$name"); fi
    if [[ $name == d ]]; then
      check "$1: ls -l $name: ${want_ls[$name]} ... (got '$got')" test "${got#"${want_ls[$name]} "}" != "$got"
    else
      check "$1: ls -l $name: ${want_ls[$name]} (got '$got')" test "$got" = "${want_ls[$name]}"
    fi
  done
}

echo "== a) seeding s3://$bucket with s3fs's headers (not through strata)"
S mb || exit 1
printf 'hello interop\n' >"$src/file.txt"
printf 'target/path' >"$src/link"
: >"$src/empty"
S put file.txt "$src/file.txt" --meta mode=33184 --meta uid=1234 --meta gid=5678 \
  --meta mtime=1500000000.123456789 --meta atime=1500000000.123456789 \
  --meta ctime=1500000000.123456789 || exit 1
S put link "$src/link" --meta mode=41471 --meta uid=1234 --meta gid=5678 \
  --meta mtime=1500000001 || exit 1  # plain seconds, as older s3fs writes
S put fifo "$src/empty" --meta mode=4516 --meta uid=1234 --meta gid=5678 \
  --meta mtime=1500000002.250000000 || exit 1
S put chardev "$src/empty" --meta mode=8576 --meta uid=1234 --meta gid=5678 \
  --meta mtime=1500000003.000000007 --meta rdev=259 || exit 1
S put d/inner.txt "$src/file.txt" --meta mode=33188 --meta uid=42 --meta gid=43 \
  --meta mtime=1500000005 || exit 1
# The directory marker as s3fs writes it: Content-Type application/x-directory, which the seed
# tool cannot set, so curl (SigV4; the keys in a file, not on the command line).
cat >"$work/auth.cfg" <<EOF
aws-sigv4 = "aws:amz:us-east-1:s3"
user = "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"
EOF
chmod 600 "$work/auth.cfg"
curl -sSf -o /dev/null -K "$work/auth.cfg" -X PUT --data-binary @/dev/null \
  -H "Content-Type: application/x-directory" -H "x-amz-meta-mode: 16872" \
  -H "x-amz-meta-uid: 42" -H "x-amz-meta-gid: 43" -H "x-amz-meta-mtime: 1500000004.987654321" \
  "$ep/$bucket/d/" || exit 1
ctype=$(head_field d/ content-type)
check "  the marker d/ is application/x-directory (got '$ctype')" test "$ctype" = application/x-directory
check "  its mode is 16872 (got '$(meta_of d/ mode)')" test "$(meta_of d/ mode)" = 16872

echo "== a) default options, empty cache dir: stat of each name (a HEAD at lookup)"
check "mount (cache a1)" mount_strata "$work/a1"
heads0=$(heads_now)
check_stats "default"
heads=$(($(heads_now) - heads0))
check "  at most one HEAD per name never seen (got $heads for ${#names[@]} names)" \
  test "$heads" -le "${#names[@]}"
check "  unmounted" unmount

echo "== a) --head-attrs, empty cache dir: ls -l alone"
check "mount --head-attrs (cache a2)" mount_strata "$work/a2" --head-attrs
heads0=$(heads_now)
check_listings "--head-attrs"
heads=$(($(heads_now) - heads0))
check "  the listings HEADed each entry never seen once at most (got $heads for ${#names[@]} names)" \
  test "$heads" -le "${#names[@]}"
check_stats "--head-attrs, after ls"
check "  unmounted" unmount

echo "== a) remount with the cache dir of the first mount: no HEAD for versions known"
check "mount (cache a1 again)" mount_strata "$work/a1"
heads0=$(heads_now)
check_listings "remount"
check_stats "remount"
heads=$(($(heads_now) - heads0)) total=$(heads_now)
check "remount: metadata_head_requests 0 for ls -l, stat and readlink (got $heads, total $total)" \
  test "$heads" = 0 -a "$total" = 0
check "  unmounted" unmount

echo "== a) remount with the --head-attrs mount's cache dir, with --head-attrs"
check "mount --head-attrs (cache a2 again)" mount_strata "$work/a2" --head-attrs
check_listings "remount --head-attrs"
check_stats "remount --head-attrs"
total=$(heads_now)
check "remount --head-attrs: metadata_head_requests 0 (got $total)" test "$total" = 0
check "  unmounted" unmount

echo "== b) attributes made through strata are stored as s3fs stores them"
check "mount (cache b1)" mount_strata "$work/b1"
check "mkdir made" mkdir "$mnt/made"
check "create a file" bash -c "printf 'made by strata\n' >'$mnt/made/file'"
check "  chmod 0600" chmod 0600 "$mnt/made/file"
check "  touch -d @1600000000.123456789" touch -d @1600000000.123456789 "$mnt/made/file"
check "ln -s" ln -s ../some/target "$mnt/made/link"
check "mkfifo -m 0644" mkfifo -m 0644 "$mnt/made/fifo"
made=(file link fifo sub sock)
if [[ $is_root -eq 1 ]]; then
  check "mknod -m 0600 c 1 3" mknod -m 0600 "$mnt/made/chardev" c 1 3
  made+=(chardev)
else
  echo "skip mknod c: not root"
fi
check "mkdir" mkdir "$mnt/made/sub"
check "  chmod 0750" chmod 0750 "$mnt/made/sub"
if [[ $is_root -eq 1 ]]; then
  check "  chown 42:43" chown 42:43 "$mnt/made/sub"
else
  echo "skip chown: not root"
fi
check "a unix socket (bind)" python3 -c \
  'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$mnt/made/sock"
wait_uploaded
declare -A seen
for name in "${made[@]}"; do seen[$name]="$(stat_line "$mnt/made/$name") $(readlink "$mnt/made/$name")"; done
check "  unmounted" unmount

echo "== b) in the bucket (S head)"
uid=$(id -u) gid=$(id -g)
# key, mode, uid, gid
expect_meta() {
  local key=$1 mode=$2 u=$3 g=$4 got name
  got=$(meta_of "$key" mode)
  check "$key: mode $mode (got '$got')" test "$got" = "$mode"
  got=$(meta_of "$key" uid)
  check "$key: uid $u (got '$got')" test "$got" = "$u"
  got=$(meta_of "$key" gid)
  check "$key: gid $g (got '$got')" test "$got" = "$g"
  got=$(meta_of "$key" mtime)
  check "$key: mtime as seconds.nanoseconds (got '$got')" is_nanos "$got"
  for name in atime ctime; do
    if has_meta "$key" "$name"; then
      got=$(meta_of "$key" "$name")
      check "$key: $name, when present, as seconds.nanoseconds (got '$got')" is_nanos "$got"
    fi
  done
}
expect_meta made/file 33152 "$uid" "$gid"
got=$(meta_of made/file mtime)
check "made/file: mtime exactly 1600000000.123456789 (got '$got')" test "$got" = 1600000000.123456789
got=$(meta_of made/file atime)
check "made/file: atime exactly 1600000000.123456789 (got '$got')" test "$got" = 1600000000.123456789
check "made/file: no rdev" lacks_meta made/file rdev
check "made/file: the body" in_bucket made/file <(printf 'made by strata\n')
expect_meta made/link 41471 "$uid" "$gid"
check "made/link: the body is the target" in_bucket made/link <(printf '../some/target')
expect_meta made/fifo 4516 "$uid" "$gid"
check "made/fifo: empty body (got size '$(head_field made/fifo size)')" test "$(head_field made/fifo size)" = 0
if [[ $is_root -eq 1 ]]; then
  expect_meta made/chardev 8576 "$uid" "$gid"
  got=$(meta_of made/chardev rdev)
  check "made/chardev: rdev 259 = makedev(1,3) (got '$got')" test "$got" = 259
  expect_meta made/sub/ 16872 42 43
else
  expect_meta made/sub/ 16872 "$uid" "$gid"
fi
got=$(head_field made/sub/ content-type)
check "made/sub/: Content-Type application/x-directory (got '$got')" test "$got" = application/x-directory
check "made/sub/: empty body (got size '$(head_field made/sub/ size)')" test "$(head_field made/sub/ size)" = 0
expect_meta made/sock 49645 "$uid" "$gid"

echo "== b) a second mount with a new, empty cache dir shows the same"
check "mount (cache b2)" mount_strata "$work/b2"
for name in "${made[@]}"; do
  got="$(stat_line "$mnt/made/$name") $(readlink "$mnt/made/$name")"
  check "made/$name: '${seen[$name]}' (got '$got')" test "$got" = "${seen[$name]}"
done
check "  unmounted" unmount

echo "== c) chmod of a clean 32 MiB file uploads no body"
head -c $((32 << 20)) /dev/urandom >"$src/big.bin"
check "mount (cache c1)" mount_strata "$work/c1"
check "cp of 32 MiB" cp "$src/big.bin" "$mnt/big.bin"
wait_uploaded
etag0=$(head_field big.bin etag)
check "  in the bucket (etag $etag0)" in_bucket big.bin "$src/big.bin"
up0=$(quiet_stat_of queue_bytes_uploaded)
check "chmod 0600" chmod 0600 "$mnt/big.bin"
wait_uploaded
up=$(($(quiet_stat_of queue_bytes_uploaded) - up0))
etag=$(head_field big.bin etag) mode=$(meta_of big.bin mode)
check "  queue_bytes_uploaded grew by less than the file's size (got $up bytes)" \
  test "$up" -lt $((32 << 20))
check "  the ETag is unchanged (got $etag)" test "$etag" = "$etag0"
check "  the body is unchanged" in_bucket big.bin "$src/big.bin"
check "  meta mode 33152 (got '$mode')" test "$mode" = 33152
got=$(stat -c %a "$mnt/big.bin" 2>&1)
check "  mode 600 on the mount (got $got)" test "$got" = 600
check "  unmounted" unmount

echo "passed $passed failed $failed"
[[ $failed -eq 0 ]]
