# shellcheck shell=bash
# Functions called from traps or from the scripts that source this file look unused here.
# shellcheck disable=SC2317,SC2034
# Shell helpers shared by the benchmark scripts (read_path.sh, write_path.sh, metadata_bench.sh).
# Source it from the repository root, then call bench_init; it sets these globals:
#   root     the repository root (the working directory at bench_init)
#   build strata seed   STRATA_BENCH_BUILD (build), its strata and strata_seed binaries
#   ep       the S3 endpoint: STRATA_BENCH_ENDPOINT, else STRATA_TEST_ENDPOINT, else empty until
#            bench_endpoint starts a radosgw of its own (tests/s3/rgw.sh on a free loopback port)
#   bucket   a bucket of this run (PREFIX-PID)
#   work     a private temp dir, removed at exit; mnt=$work/mnt is the mount point
#   bench_rm files to remove at exit (append to it), besides $work
# and exports AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default: STRATA_TEST_* keys, else
# testkey / testsecret). At exit, also on SIGINT, SIGTERM and SIGHUP: background jobs of the
# script are killed (by pid), the mount is unmounted, the bucket's objects are deleted (when the
# server is not our own), our radosgw is stopped (by the pids rgw.sh recorded) and the temp
# files are removed. Endpoints must be loopback addresses.

bench_name=bench
die() { echo "$bench_name: $*" >&2; exit 1; }

# bench_init NAME BUCKET_PREFIX
bench_init() {
  bench_name=$1
  root=$PWD
  build=${STRATA_BENCH_BUILD:-build}
  strata=$build/tools/strata seed=$build/tests/strata_seed
  [[ -x $strata && -x $seed ]] || die "build strata and strata_seed in $build first"
  [[ -c /dev/fuse ]] || die "no /dev/fuse"
  ep=${STRATA_BENCH_ENDPOINT:-${STRATA_TEST_ENDPOINT:-}}
  ep=${ep%/}
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-${STRATA_TEST_ACCESS_KEY:-testkey}}
  export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-${STRATA_TEST_SECRET_KEY:-testsecret}}
  if [[ -n $ep && ! $ep =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$ ]]; then
    die "$ep is not a loopback endpoint"
  fi
  bucket=$2-$$
  own_rgw="" bench_rm=() bench_cleaned=""
  trap bench_cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  work=$(mktemp -d "/tmp/strata-bench-$1.XXXXXX")
  chmod 700 "$work"
  mnt=$work/mnt
  mkdir -p "$mnt"
}

bench_cleanup() {
  [[ -z $bench_cleaned ]] || return 0
  bench_cleaned=1
  set +e
  local pid
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  unmount || umount -l "$mnt"  # never leave the mount under the rm -rf below
  if [[ -n $own_rgw ]]; then
    RGW_DIR=$own_rgw bash "$root/tests/s3/rgw.sh" stop
    rm -rf "$own_rgw"
  elif [[ -n $ep ]]; then
    S rm "" >/dev/null 2>&1
  fi
  ((${#bench_rm[@]} == 0)) || rm -f "${bench_rm[@]}"
  [[ -z $work ]] || rm -rf --one-file-system "$work"
}

# bench_endpoint MEM_MB: when no endpoint was given, start a radosgw of our own whose in-memory
# OSD holds MEM_MB MiB (at least 4096), on the first free loopback port of 7500, 7510, ... 7700.
bench_endpoint() {
  [[ -z $ep ]] || return 0
  local mem=$1 port="" p
  ((mem >= 4096)) || mem=4096
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  for p in $(seq 7500 10 7700); do
    if port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)); then port=$p; break; fi
  done
  [[ -n $port ]] || die "no free loopback port for radosgw"
  own_rgw=$(mktemp -d /tmp/strata-bench-rgw.XXXXXX)
  RGW_DIR=$own_rgw RGW_PORT=$port RGW_MEM_MB=$mem RGW_ACCESS_KEY=$AWS_ACCESS_KEY_ID \
    RGW_SECRET_KEY=$AWS_SECRET_ACCESS_KEY bash "$root/tests/s3/rgw.sh" start || die "radosgw did not start"
  ep=http://127.0.0.1:$port
}

# curl_auth: writes $work/auth.cfg, SigV4 signing for curl -K (--aws-sigv4 and the keys go
# through a config file, not the command line: the process list is public).
curl_auth() {
  cat >"$work/auth.cfg" <<EOF
aws-sigv4 = "aws:amz:${AWS_REGION:-us-east-1}:s3"
user = "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"
EOF
}

S() { "$seed" --endpoint "$ep" --bucket "$bucket" "$@"; }

# mount_strata CACHE_DIR [OPTION...]: mount s3://$bucket on $mnt (daemonized); its log goes to
# $work/strata.log, whose end is shown when the mount fails.
mount_strata() {
  local cache=$1; shift
  "$strata" --log-file "$work/strata.log" mount "s3://$bucket" "$mnt" --endpoint "$ep" \
    --cache-dir "$cache" "$@" || { tail -n 20 "$work/strata.log" >&2 2>/dev/null; die "mount failed: $*"; }
}
is_mounted() { grep -qs " $mnt fuse" /proc/mounts; }
unmount() {
  is_mounted || return 0
  umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null
  for _ in $(seq 600); do is_mounted || return 0; sleep 0.1; done
  echo "$bench_name: cannot unmount $mnt" >&2
  return 1
}
# daemon_pid: the pid of the strata daemon serving $mnt (mount daemonizes: not a child of ours).
daemon_pid() {
  local pid
  for pid in $(pgrep -x strata); do
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$mnt" && { echo "$pid"; return 0; }
  done
  die "no strata daemon for $mnt"
}
peak_rss_mib() { awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$1/status"; }  # PID
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs"; }  # PID: VmHWM := the current RSS
stat_of() { "$strata" stats "$mnt" | awk -v k="$1" '$1 == k { print $2 }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }  # calc FORMAT EXPRESSION
secs() { calc %.3f "$2 - $1"; }               # start end
mbps() { calc %.0f "$1 / ($3 - $2) / 1e6"; }  # bytes start end

wait_in_s3() {  # until queue_depth is 0, polled every 20 ms; 10 minutes at most
  sleep 0.1  # the kernel sends RELEASE after close(2) returns
  for _ in $(seq 30000); do
    [[ $(stat_of queue_depth) == 0 ]] && return 0
    sleep 0.02
  done
  die "the upload queue did not drain in 10 minutes"
}

# ram_dir BYTES: /dev/shm when it has room for BYTES (and 64 MiB more), else $work.
ram_dir() {
  if [[ -d /dev/shm && $(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') -gt $(($1 / 1024 + 65536)) ]]; then
    echo /dev/shm
  else
    echo "$work"
  fi
}
