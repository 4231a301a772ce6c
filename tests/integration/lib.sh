# shellcheck shell=bash
# What the shell tests of this directory share; each sources it right after `set -uo pipefail`
# and setting its own variables, with `source "$(dirname "$0")/lib.sh"`. Sourcing only defines
# functions and zeroes the counters. It offers:
#   require [fuse] [python3]   exit 77 (skipped) without STRATA_TEST_ENDPOINT, /dev/fuse, python3
#   use_test_server            export the test server's keys as AWS_*; set ep to its endpoint
#   ok, bad, check             print "ok   NAME" / "FAIL NAME" and count them in passed / failed
#   same_file, is_mounted      cmp -s; whether a FUSE file system is mounted on a path
#   S ARG...                   the seed tool on $ep and $bucket
#   stat_of, quiet_stat_of     one counter of `strata stats` of $mnt (the second without errors)
#   unmount                    unmount $mnt of a daemonized mount and wait for it to go
#   remove_mount_and_bucket    at exit: unmount, empty $bucket, remove $work
#   empty_buckets              at exit: empty every bucket in the array buckets
# For a daemon started in the foreground (its pid in $daemon, its output in $log):
#   await_mount TRIES          wait for $mnt to be mounted, or for the daemon to exit
#   unmount_daemon TRIES       clean unmount; wait for the daemon to exit, or kill it
#   kill_only, kill_daemon     SIGKILL (then detach the dead mount); detach
#   daemon_log                 the last lines of $log
#   keep_on_failure NAME WHAT FILE...  when a check failed: FILEs kept in /tmp/strata-NAME-failed.*
# They use the test's variables: strata and seed (the binaries), ep, bucket, mnt, work, daemon,
# log and buckets where said.
# shellcheck disable=SC2154  # strata, seed, bucket, mnt, work, daemon, log, buckets: the test's

passed=0 failed=0

require() {  # require [fuse] [python3]: exit 77 without a test server, or without what is named
  [[ -n ${STRATA_TEST_ENDPOINT:-} ]] || { echo "STRATA_TEST_ENDPOINT not set: skipped"; exit 77; }
  local what
  for what; do
    case $what in
      fuse) [[ -c /dev/fuse ]] || { echo "no /dev/fuse: skipped"; exit 77; } ;;
      python3) command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; } ;;
      *) echo "require: unknown requirement '$what'" >&2; exit 2 ;;
    esac
  done
}
use_test_server() {
  export AWS_ACCESS_KEY_ID=$STRATA_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$STRATA_TEST_SECRET_KEY
  ep=$STRATA_TEST_ENDPOINT
}

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
same_file() { cmp -s "$1" "$2"; }
is_mounted() { grep -qs " $1 fuse" /proc/mounts; }
S() { "$seed" --endpoint "$ep" --bucket "$bucket" "$@"; }  # on $ep, never through a proxy
stat_of() { "$strata" stats "$mnt" | awk -v k="$1" '$1 == k { print $2 }'; }
quiet_stat_of() { "$strata" stats "$mnt" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }

unmount() {  # a daemonized mount: unmount $mnt, wait 10 s at most for it to go
  is_mounted "$mnt" || return 0
  umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null
  for _ in $(seq 100); do is_mounted "$mnt" || return 0; sleep 0.1; done
  echo "cannot unmount $mnt" >&2
  return 1
}
remove_mount_and_bucket() {  # an EXIT trap
  unmount
  S rm "" >/dev/null 2>&1
  rm -rf "$work"
}
empty_buckets() {
  local b
  for b in "${buckets[@]}"; do bucket=$b; S rm "" >/dev/null 2>&1; done
}

daemon_log() { echo "     daemon log ($log), last lines:"; tail -n 15 "$log" | sed 's/^/     | /'; }
await_mount() {  # await_mount TRIES: 0 once $mnt is mounted, checked every 50 ms; 1 if not
  for _ in $(seq "$1"); do
    is_mounted "$mnt" && return 0
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.05
  done
  echo "     the mount did not come up"
  daemon_log
  return 1
}
detach() {  # lazily unmounts a dead mount
  is_mounted "$mnt" || return 0
  umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
  for _ in $(seq 100); do is_mounted "$mnt" || return 0; sleep 0.05; done
  echo "     cannot detach $mnt" >&2
  return 1
}
kill_only() {  # SIGKILL; the dead mount stays attached (its users get ENOTCONN)
  kill -9 "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  daemon=""
}
kill_daemon() {  # SIGKILL, then the mount is dead: detach it
  kill_only
  detach
}
# unmount_daemon TRIES: clean unmount; the daemon drains (bounded by its --drain-timeout) and
# exits within TRIES x 50 ms: 0, and the caller reaps it; else it is killed: 1.
unmount_daemon() {
  umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null
  for _ in $(seq "$1"); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$daemon" 2>/dev/null; then
    echo "     the daemon did not exit after the unmount: killed"
    kill_daemon
    return 1
  fi
}
keep_on_failure() {  # keep_on_failure NAME WHAT FILE...: what a failure needs to be understood
  [[ $failed -gt 0 ]] || return 0
  local kept
  kept=$(mktemp -d "/tmp/strata-$1-failed.XXXXXX")
  cp "${@:3}" "$kept"/ 2>/dev/null
  echo "$2 kept in $kept"
}
