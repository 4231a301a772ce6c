#!/usr/bin/env bash
# Write-path tests through a real FUSE mount of a bucket on the local S3 server: new files,
# owners and s3fs attributes, O_TRUNC / O_APPEND / O_EXCL, writes into the middle of an object,
# truncate, unlink (also while open), directories, renames of files and trees, symlinks, the
# refused hard link, fsync and statfs, pending files in listings and across a remount, the queue
# command, a read-only mount and keys too long for S3. Each change is checked on the mount right
# away (before the upload) and then in the bucket, through the seed tool, once `strata stats`
# shows an empty upload queue.
# Usage: write_test.sh STRATA_BIN SEED_BIN   (skips with 77 without a test server or /dev/fuse)
set -uo pipefail
strata=$1 seed=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require fuse
use_test_server
bucket="strata-write-$$"
work=$(mktemp -d /tmp/strata-write-test.XXXXXX)
chmod 0711 "$work"  # another user (uid 1234) writes into the mount below it
mnt=$work/mnt cache=$work/cache src=$work/src
mkdir -p "$mnt" "$src"
trap remove_mount_and_bucket EXIT
# shellcheck disable=SC2120  # called with --read-only through check
mount_strata() {  # read-write unless given --read-only; daemonizes once the mount is live
  "$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" --attr-ttl 1 \
    --allow-other "$@"
}
expect_fail() {  # expect_fail NAME TEXT -- COMMAND...: COMMAND fails and says TEXT
  local name=$1 text=$2; shift 3
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -ne 0 ]] && grep -qF -- "$text" <<<"$out"; then
    ok "$name"
  else
    bad "$name (exit $status): $out"
  fi
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
# The bucket, through the seed tool.
in_bucket() {  # in_bucket KEY FILE: the object exists and its body equals FILE
  rm -f "$work/got"
  S get "$1" "$work/got" 2>/dev/null && cmp -s "$work/got" "$2"
}
not_in_bucket() {  # the seed tool says "no such key" (exit 3), not just "failed"
  S head "$1" >/dev/null 2>&1
  [[ $? -eq 3 ]]
}
head_field() { S head "$1" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }
meta_of() { S head "$1" 2>/dev/null | awk -v k="$2" '$1 == "meta" && $2 == k { print $3 }'; }
size_on_mount() { stat -c %s "$1" 2>/dev/null; }
text() { printf '%s' "$2" >"$1"; }      # text FILE CONTENT: create or O_TRUNC, then write
append() { printf '%s' "$2" >>"$1"; }   # append FILE CONTENT: O_APPEND
py() { python3 -c "$@"; }
quiet() { "$@" >/dev/null; }
between() { [[ $2 =~ ^[0-9]+$ ]] && (($1 <= $2 && $2 <= $3)); }  # between MIN N MAX
is_1600000000() { [[ $1 =~ ^1600000000(\.[0-9]+)?$ ]]; }        # s3fs writes "SECONDS[.NANOS]"

echo "== seeding s3://$bucket (objects that exist before the mount)"
S mb || exit 1
head -c $((3 << 20)) /dev/urandom >"$src/patch.bin"
head -c $((1 << 20)) /dev/urandom >"$src/fdtrunc.bin"
text "$src/trunc.txt" "to be truncated"$'\n'
text "$src/append.txt" "zero"$'\n'
text "$src/attrs.txt" "attributes change, the body stays"$'\n'
text "$src/x" "x"$'\n'
text "$src/y" "y"$'\n'
text "$src/z" "z"$'\n'
S put patch.bin "$src/patch.bin"
S put fdtrunc.bin "$src/fdtrunc.bin"
S put trunc.txt "$src/trunc.txt"
S put append.txt "$src/append.txt"
S put attrs.txt "$src/attrs.txt"
S put doomed.txt "$src/x"
S put open-unlink-old.txt "$src/y"
S put ren-a.txt "$src/x"
S put ren-c.txt "$src/y"
S put ren-d.txt "$src/z"
S put oldtree/x "$src/x"
S put oldtree/deep/y "$src/y"
S put oldtree/deep/z "$src/z"
S put seeded/inner.txt "$src/x"  # an implicit directory: no marker

# shellcheck disable=SC2119
mount_strata || { echo "mount failed"; exit 1; }
check "mount is live after the command returns" is_mounted "$mnt"

echo "== new files: create, write, cp; read back before the upload"
check "create and write a small file" text "$mnt/small.txt" "hello strata"$'\n'
text "$src/small.txt" "hello strata"$'\n'
check "  reads back right away" same_file "$mnt/small.txt" "$src/small.txt"
head -c $((5 << 20)) /dev/urandom >"$src/five.bin"
check "cp of a 5 MiB file" cp "$src/five.bin" "$mnt/five.bin"
check "  reads back right away" same_file "$mnt/five.bin" "$src/five.bin"
check "  size on the mount" test "$(size_on_mount "$mnt/five.bin")" = $((5 << 20))
wait_uploaded
check "  small file in the bucket" in_bucket small.txt "$src/small.txt"
check "  5 MiB file in the bucket" in_bucket five.bin "$src/five.bin"

echo "== a new file belongs to its writer"
if [[ $(id -u) -eq 0 ]]; then
  check "mkdir + chmod 0777" bash -c "mkdir '$mnt/shared' && chmod 0777 '$mnt/shared'"
  # shellcheck disable=SC2016  # $1 is for the inner sh
  check "uid 1234 creates a file" setpriv --reuid=1234 --regid=1234 --clear-groups -- \
    sh -c 'printf "by 1234\n" >"$1"' sh "$mnt/shared/owned.txt"
  printf 'by 1234\n' >"$src/owned.txt"
  owner=$(stat -c %u:%g "$mnt/shared/owned.txt" 2>&1)
  check "  owner on the mount is 1234:1234 (got $owner)" test "$owner" = 1234:1234
  wait_uploaded
  check "  in the bucket" in_bucket shared/owned.txt "$src/owned.txt"
  uid=$(meta_of shared/owned.txt uid) gid=$(meta_of shared/owned.txt gid)
  check "  meta uid 1234 (got '$uid')" test "$uid" = 1234
  check "  meta gid 1234 (got '$gid')" test "$gid" = 1234
else
  echo "skip owner checks: not root"
fi

echo "== chmod, touch -d and chown on an uploaded object become s3fs headers"
check "chmod 640" chmod 640 "$mnt/attrs.txt"
check "touch -d @1600000000" touch -d @1600000000 "$mnt/attrs.txt"
check "chown 1234:1234" chown 1234:1234 "$mnt/attrs.txt"
got=$(stat -c '%a %Y %u:%g' "$mnt/attrs.txt" 2>&1)
check "  on the mount: 640 1600000000 1234:1234 (got $got)" test "$got" = "640 1600000000 1234:1234"
wait_uploaded
mode=$(meta_of attrs.txt mode) mtime=$(meta_of attrs.txt mtime)
uid=$(meta_of attrs.txt uid) gid=$(meta_of attrs.txt gid)
check "  meta mode 33184 (got '$mode')" test "$mode" = 33184
check "  meta mtime 1600000000 (got '$mtime')" is_1600000000 "$mtime"
check "  meta uid 1234 (got '$uid')" test "$uid" = 1234
check "  meta gid 1234 (got '$gid')" test "$gid" = 1234
check "  the body is unchanged" in_bucket attrs.txt "$src/attrs.txt"

echo "== O_TRUNC, O_APPEND, O_EXCL"
check "O_TRUNC of an uploaded object" bash -c ": >'$mnt/trunc.txt'"
check "  size 0 on the mount" test "$(size_on_mount "$mnt/trunc.txt")" = 0
check "O_APPEND twice to an uploaded object" bash -c "echo one >>'$mnt/append.txt' && echo two >>'$mnt/append.txt'"
printf 'zero\none\ntwo\n' >"$src/append.txt"
check "  appended content on the mount" same_file "$mnt/append.txt" "$src/append.txt"
expect_fail "noclobber refuses an existing file" "cannot overwrite existing file" -- \
  bash -c "set -o noclobber; echo clobbered >'$mnt/small.txt'"
expect_fail "O_CREAT|O_EXCL on an existing file: EEXIST" "EEXIST" -- py '
import errno, os, sys
try:
    os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
except OSError as e:
    sys.exit(errno.errorcode[e.errno])
' "$mnt/small.txt"
check "  the existing file is untouched" same_file "$mnt/small.txt" "$src/small.txt"
check "O_CREAT|O_EXCL creates a new file" py '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"exclusive\n")
os.close(fd)
' "$mnt/excl.txt"
printf 'exclusive\n' >"$src/excl.txt"
wait_uploaded
check "  O_TRUNC: size 0 in the bucket (got '$(head_field trunc.txt size)')" \
  test "$(head_field trunc.txt size)" = 0
check "  O_APPEND: content in the bucket" in_bucket append.txt "$src/append.txt"
check "  noclobber: unchanged in the bucket" in_bucket small.txt "$src/small.txt"
check "  O_EXCL: new file in the bucket" in_bucket excl.txt "$src/excl.txt"

echo "== writes into the middle of an object seeded before the mount"
cp "$src/patch.bin" "$src/patched.bin"
patch_bytes() {  # the same three small writes, on the mount and on the local copy
  printf 'AAAA' | dd of="$1" bs=1 seek=1000 conv=notrunc status=none &&
    printf 'BBBBBBBB' | dd of="$1" bs=1 seek=1500000 conv=notrunc status=none &&
    printf 'CCC' | dd of="$1" bs=1 seek=$(((3 << 20) - 10)) conv=notrunc status=none
}
check "dd conv=notrunc at three offsets" patch_bytes "$mnt/patch.bin"
patch_bytes "$src/patched.bin"
check "  reads back right away" same_file "$mnt/patch.bin" "$src/patched.bin"
check "  size unchanged on the mount" test "$(size_on_mount "$mnt/patch.bin")" = $((3 << 20))
ndiff=$(cmp -l "$src/patch.bin" "$mnt/patch.bin" 2>/dev/null | wc -l)
check "  at most the 15 written bytes differ (got $ndiff)" between 1 "$ndiff" 15
wait_uploaded
check "  the patched object in the bucket" in_bucket patch.bin "$src/patched.bin"

echo "== truncate: grow and shrink, closed and through an open fd"
check "truncate -s grows a new file" bash -c "printf abc >'$mnt/grow.bin' && truncate -s 10000 '$mnt/grow.bin'"
printf abc >"$src/grow.bin" && truncate -s 10000 "$src/grow.bin"
check "  zeros after the old end" same_file "$mnt/grow.bin" "$src/grow.bin"
check "truncate -s shrinks an uploaded 5 MiB file" truncate -s 1000000 "$mnt/five.bin"
head -c 1000000 "$src/five.bin" >"$src/five-short.bin"
check "  the first 1000000 bytes remain" same_file "$mnt/five.bin" "$src/five-short.bin"
# Through one fd: write when empty, shrink, check fstat, grow, write the last bytes.
fd_truncate='
import os, sys
path, shrink, grow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
if os.fstat(fd).st_size == 0:
    os.write(fd, b"0123456789" * 500)
os.ftruncate(fd, shrink)
if os.fstat(fd).st_size != shrink:
    sys.exit("size %d after ftruncate(%d)" % (os.fstat(fd).st_size, shrink))
os.ftruncate(fd, grow)
os.pwrite(fd, b"tail", grow - 4)
os.close(fd)
'
check "ftruncate a new file through its fd" py "$fd_truncate" "$mnt/fdnew.bin" 2000 8000
py "$fd_truncate" "$src/fdnew.bin" 2000 8000
check "  content on the mount" same_file "$mnt/fdnew.bin" "$src/fdnew.bin"
check "ftruncate an uploaded object through its fd" py "$fd_truncate" "$mnt/fdtrunc.bin" 300000 400000
py "$fd_truncate" "$src/fdtrunc.bin" 300000 400000
check "  content on the mount" same_file "$mnt/fdtrunc.bin" "$src/fdtrunc.bin"
wait_uploaded
check "  grown file in the bucket" in_bucket grow.bin "$src/grow.bin"
check "  shrunk file in the bucket" in_bucket five.bin "$src/five-short.bin"
check "  fd-truncated new file in the bucket" in_bucket fdnew.bin "$src/fdnew.bin"
check "  fd-truncated object in the bucket" in_bucket fdtrunc.bin "$src/fdtrunc.bin"

echo "== unlink, also while open"
check "rm of an uploaded object" rm "$mnt/doomed.txt"
check "  gone from the mount" test ! -e "$mnt/doomed.txt"
check "rm of a file not uploaded yet" bash -c "echo brief >'$mnt/brief.txt' && rm '$mnt/brief.txt'"
check "  gone from the mount" test ! -e "$mnt/brief.txt"
check "unlink a new file while open, keep writing and reading" py '
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"before unlink\n")
os.unlink(path)
if os.path.exists(path):
    sys.exit("still visible after unlink")
os.write(fd, b"after unlink\n")
data = os.pread(fd, 100, 0)
os.close(fd)
if data != b"before unlink\nafter unlink\n":
    sys.exit("read back %r" % data)
' "$mnt/open-unlink-new.txt"
check "  gone from the mount" test ! -e "$mnt/open-unlink-new.txt"
check "unlink an uploaded object while open, then read it" py '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
data = os.read(fd, 1 << 20)
os.close(fd)
if data != open(sys.argv[2], "rb").read():
    sys.exit("read back %r" % data)
' "$mnt/open-unlink-old.txt" "$src/y"
check "  gone from the mount" test ! -e "$mnt/open-unlink-old.txt"
wait_uploaded
check "  uploaded object gone from the bucket" not_in_bucket doomed.txt
check "  never-uploaded file not in the bucket" not_in_bucket brief.txt
check "  unlinked-while-open new file not in the bucket" not_in_bucket open-unlink-new.txt
check "  unlinked-while-open object gone from the bucket" not_in_bucket open-unlink-old.txt
hidden=$(S ls "" 2>/dev/null | grep -c 'fuse_hidden')
check "  no .fuse_hidden keys (got $hidden)" test "$hidden" -eq 0

echo "== directories"
check "mkdir" mkdir "$mnt/newdir"
check "  a directory on the mount" test -d "$mnt/newdir"
check "mkdir of another, then rmdir while empty" bash -c "mkdir '$mnt/emptydir' && rmdir '$mnt/emptydir'"
check "  gone from the mount" test ! -e "$mnt/emptydir"
check "mkdir of a directory to remove after its upload" mkdir "$mnt/olddir"
mkdir "$mnt/full" && echo f >"$mnt/full/f"
expect_fail "rmdir of a non-empty directory" "Directory not empty" -- rmdir "$mnt/full"
expect_fail "rmdir of an implicit directory with an object" "Directory not empty" -- \
  rmdir "$mnt/seeded"
expect_fail "mkdir of an existing directory" "File exists" -- mkdir "$mnt/newdir"
expect_fail "mkdir over an implicit directory" "File exists" -- mkdir "$mnt/seeded"
expect_fail "mkdir over a file" "File exists" -- mkdir "$mnt/small.txt"
wait_uploaded
check "  dir/ marker in the bucket" in_bucket newdir/ /dev/null
ctype=$(head_field newdir/ content-type)
check "  content-type application/x-directory (got '$ctype')" test "$ctype" = application/x-directory
check "  rmdir before the upload: no marker" not_in_bucket emptydir/
check "rmdir of an uploaded empty directory" rmdir "$mnt/olddir"
check "  non-empty directory still there" in_bucket full/f <(echo f)
wait_uploaded
check "  its marker is gone from the bucket" not_in_bucket olddir/

echo "== rename"
check "rename an uploaded object" mv "$mnt/ren-a.txt" "$mnt/ren-b.txt"
check "  old name gone, new name has the content" bash -c \
  "[[ ! -e '$mnt/ren-a.txt' ]] && cmp -s '$mnt/ren-b.txt' '$src/x'"
check "rename a file not uploaded yet" bash -c "echo new >'$mnt/ren-p1.txt' && mv '$mnt/ren-p1.txt' '$mnt/ren-p2.txt'"
check "rename onto an existing file" mv "$mnt/ren-c.txt" "$mnt/ren-d.txt"
check "  the target is replaced" bash -c "[[ ! -e '$mnt/ren-c.txt' ]] && cmp -s '$mnt/ren-d.txt' '$src/y'"
check "rename a directory tree of objects (3 files, 2 levels)" mv "$mnt/oldtree" "$mnt/newtree"
check "  the tree under its new name" bash -c "[[ ! -e '$mnt/oldtree' ]] &&
  cmp -s '$mnt/newtree/x' '$src/x' && cmp -s '$mnt/newtree/deep/y' '$src/y' &&
  cmp -s '$mnt/newtree/deep/z' '$src/z'"
mkdir -p "$mnt/rd1" "$mnt/rd2" && echo f >"$mnt/rd2/f"
check "rename a directory onto a non-empty one: ENOTEMPTY or EEXIST" py '
import errno, os, sys
try:
    os.rename(sys.argv[1], sys.argv[2])
except OSError as e:
    sys.exit(0 if e.errno in (errno.ENOTEMPTY, errno.EEXIST) else errno.errorcode[e.errno])
sys.exit("the rename succeeded")
' "$mnt/rd1" "$mnt/rd2"
check "  both directories intact" bash -c "[[ -d '$mnt/rd1' && -f '$mnt/rd2/f' ]]"
wait_uploaded
check "  renamed object under its new key" in_bucket ren-b.txt "$src/x"
check "  old key gone" not_in_bucket ren-a.txt
check "  renamed new file under its new key" in_bucket ren-p2.txt <(echo new)
check "  and never under its first name" not_in_bucket ren-p1.txt
check "  replaced target has the new content" in_bucket ren-d.txt "$src/y"
check "  replaced source key gone" not_in_bucket ren-c.txt
keys=$(S ls newtree/ 2>&1 | grep -v '/$' | tr '\n' ' ')
check "  new tree keys: $keys" test "$keys" = "newtree/deep/y newtree/deep/z newtree/x "
old=$(S ls oldtree/ 2>&1 | tr '\n' ' ')
check "  no old tree keys (got '$old')" test -z "$old"
check "  moved body newtree/x" in_bucket newtree/x "$src/x"
check "  moved body newtree/deep/y" in_bucket newtree/deep/y "$src/y"
check "  moved body newtree/deep/z" in_bucket newtree/deep/z "$src/z"

echo "== symlinks"
check "ln -s" ln -s some/target "$mnt/link"
check "  readlink" test "$(readlink "$mnt/link")" = some/target
check "  a symlink on the mount" test -L "$mnt/link"
wait_uploaded
check "  object body is the target" in_bucket link <(printf 'some/target')
mode=$(meta_of link mode)
check "  meta mode is S_IFLNK: 0120000..0120777 (got '$mode')" between 40960 "$mode" 45055

echo "== hard links are refused"
expect_fail "ln: Operation not permitted" "Operation not permitted" -- ln "$mnt/small.txt" "$mnt/hard"
check "  no link left behind" test ! -e "$mnt/hard"

echo "== fsync, sync, statfs"
head -c $((256 << 10)) /dev/urandom >"$src/fsync.bin"
check "dd conv=fsync" dd if="$src/fsync.bin" of="$mnt/fsync.bin" bs=64k conv=fsync status=none
check "  reads back" same_file "$mnt/fsync.bin" "$src/fsync.bin"
check "sync of one file (fsync)" sync "$mnt/fsync.bin"
check "sync -f (syncfs)" sync -f "$mnt/fsync.bin"
check "sync" sync
check "df (statfs)" quiet df "$mnt"
wait_uploaded
check "  fsynced file in the bucket" in_bucket fsync.bin "$src/fsync.bin"

echo "== listings show files not uploaded yet"
check "mkdir + 20 small files" bash -c \
  "mkdir '$mnt/many' && for i in \$(seq 20); do echo \"file \$i\" >'$mnt/many/f'\$i || exit 1; done"
# shellcheck disable=SC2012  # ls is what users run
n=$(ls "$mnt/many" | wc -l)
check "  ls right away lists 20 (got $n)" test "$n" -eq 20
# shellcheck disable=SC2012
n=$(ls -l "$mnt/many" | awk '/^-/ { s += $5 } END { print s + 0 }')
check "  ls -l shows their sizes: 9 x 7 + 11 x 8 bytes (got $n)" test "$n" -eq 151
wait_uploaded
n=$(S ls many/ 2>/dev/null | grep -vc '/$')
check "  20 keys in the bucket (got $n)" test "$n" -eq 20

echo "== pending writes survive a remount"
head -c $((512 << 10)) /dev/urandom >"$src/remount.bin"
check "write, then unmount right away" bash -c \
  "cp '$src/remount.bin' '$mnt/remount.bin' && echo tiny >'$mnt/remount.txt'"
check "  unmounted" unmount
check "  mounted again" mount_strata
check "  reads back after the remount" same_file "$mnt/remount.bin" "$src/remount.bin"
check "  small one too" same_file "$mnt/remount.txt" <(echo tiny)
wait_uploaded
check "  in the bucket" in_bucket remount.bin "$src/remount.bin"
check "  small one too" in_bucket remount.txt <(echo tiny)

echo "== strata queue"
echo pending >"$mnt/queued.txt"
qout=$("$strata" queue "$mnt" 2>&1); qstatus=$?
qhead=$(head -1 <<<"$qout")
check "strata queue exits 0 (exit $qstatus)" test "$qstatus" -eq 0
check "  and prints a header line: $qhead" test -n "$qhead"
qout=$("$strata" queue "$mnt" retry 2>&1); qstatus=$?
check "strata queue retry exits 0 (exit $qstatus): $qout" test "$qstatus" -eq 0
wait_uploaded
expect_fail "strata stats of a directory that is not a mount: one line" \
  "strata stats: $src is not a running strata mount (" -- "$strata" stats "$src"
expect_fail "strata stats of a directory inside the mount" \
  "is not a running strata mount (not its root directory" -- "$strata" stats "$mnt/many"
expect_fail "strata fault-rate without --fault-rate" "mounted without --fault-rate" -- \
  "$strata" fault-rate "$mnt" 1

echo "== extended attributes are not supported (the control channel is an ioctl)"
expect_fail "setfattr: Operation not supported" "Operation not supported" -- \
  setfattr -n user.note -v 1 "$mnt/queued.txt"
expect_fail "  on the root too" "Operation not supported" -- setfattr -n user.note -v 1 "$mnt"
expect_fail "  the old control attribute is gone" "Operation not supported" -- \
  getfattr -n user.strata.stats "$mnt"
check "  listxattr shows nothing" test -z "$(getfattr -d -m - "$mnt/queued.txt" 2>/dev/null)"
check "  and strata stats still works" bash -c "'$strata' stats '$mnt' | grep -q '^queue_depth '"

echo "== keys longer than 1024 bytes"
long() { printf "%${2}s" "" | tr ' ' "$1"; }  # long CHAR COUNT
deep="$mnt/$(long a 250)/$(long b 250)/$(long c 250)/$(long d 250)"
check "4 levels of 250-byte names (a 1004-byte key)" mkdir -p "$deep"
expect_fail "a 1255-byte key: File name too long" "File name too long" -- \
  touch "$deep/$(long e 250)"
expect_fail "a 1255-byte directory key: File name too long" "File name too long" -- \
  mkdir "$deep/$(long f 250)"
check "  nothing left on the mount" bash -c "[[ \$(ls -A '$deep' | wc -l) -eq 0 ]]"

echo "== a read-only mount"
unmount
check "mount --read-only" mount_strata --read-only
expect_fail "touch: Read-only file system" "Read-only file system" -- touch "$mnt/ro-new"
expect_fail "append: Read-only file system" "Read-only file system" -- \
  bash -c "echo more >>'$mnt/small.txt'"
expect_fail "mkdir: Read-only file system" "Read-only file system" -- mkdir "$mnt/ro-dir"
expect_fail "rm: Read-only file system" "Read-only file system" -- rm "$mnt/small.txt"
check "  files still readable" same_file "$mnt/small.txt" "$src/small.txt"
check "  strata queue says there is no queue" \
  bash -c "'$strata' queue '$mnt' | grep -qx 'read-only mount: no upload queue'"
expect_fail "  strata queue retry: Read-only file system" \
  "Read-only file system (a read-only mount has no upload queue)" -- "$strata" queue "$mnt" retry
unmount

echo "== staging full: ENOSPC for the writer, nothing lost"
check "mount with a 2 MiB staging area" mount_strata --staging-size 2M
head -c $((3 << 20)) /dev/urandom >"$src/three.bin"
expect_fail "a 3 MiB file: No space left on device" "No space left on device" -- \
  dd if="$src/three.bin" of="$mnt/three.bin" bs=1M status=none
check "  a 1 MiB file still fits" bash -c "head -c 1000000 '$src/three.bin' >'$mnt/one.bin'"
wait_uploaded
check "  and is in the bucket" in_bucket one.bin <(head -c 1000000 "$src/three.bin")
unmount

echo "== SIGTERM drains the queue; what S3 refused stays queued for the next mount"
"$strata" mount "s3://$bucket" "$mnt" --endpoint "$ep" --cache-dir "$cache" --attr-ttl 1 \
  --fault-rate 0 --drain-timeout 2 -f 2>>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do is_mounted "$mnt" && break; sleep 0.1; done
check "mount in the foreground with fault injection" is_mounted "$mnt"
check "S3 made unreachable for uploads" "$strata" fault-rate "$mnt" 1
expect_fail "  a fault rate above 1 is refused" "is not a fraction from 0 to 1" -- \
  "$strata" fault-rate "$mnt" 2
check "a write while S3 is unreachable succeeds (durable locally)" \
  bash -c "echo offline >'$mnt/offline.txt'"
sleep 0.5
check "  strata queue shows it pending with attempts" \
  bash -c "'$strata' queue '$mnt' | grep -q 'offline.txt'"
kill -TERM "$daemon"
t0=$SECONDS
wait "$daemon"
check "SIGTERM: the daemon exits after the 2 s drain timeout (took $((SECONDS - t0)) s)" \
  test $((SECONDS - t0)) -le 10
check "  and unmounted" bash -c "! grep -qs ' $mnt fuse' /proc/mounts"
check "  not in the bucket yet" not_in_bucket offline.txt
check "remount (S3 reachable again)" mount_strata
check "  the pending file reads back" bash -c "[[ \$(cat '$mnt/offline.txt') == offline ]]"
wait_uploaded
check "  and reaches the bucket" in_bucket offline.txt <(echo offline)
unmount

echo "passed $passed failed $failed"
[[ $failed -eq 0 ]]
