#!/usr/bin/env bash
# Crash tests of the write path through a real FUSE mount on the local S3 server. The guarantee:
# after fsync or close returns 0, the data survives kill -9 of the daemon and reaches S3 after a
# restart, byte-identical, and nothing deleted or renamed away comes back.
#   A writer (python, below) makes random creates, overwrites, in-place patches, renames and
#   unlinks under the mount and journals each one OUTSIDE the mount once it is acknowledged
#   (fsync or close for data; rename and unlink followed by an fsync of the directory). The
#   daemon is killed with SIGKILL at a random moment, the dead mount detached, the daemon
#   restarted on the same cache directory; 3 to 5 rounds. After each restart the mount must show
#   the journaled state; at the end the queue must drain and the bucket must hold exactly the
#   journaled files, byte-identical. Variants: no faults; 30% transient S3 faults; the network
#   between strata and S3 failing (fault_proxy.py: resets before, during and after requests,
#   5xx, truncated and garbled bodies on 20% of requests), checked at the end straight from S3
#   and through a fresh mount with an empty cache, without any retry command; S3 unreachable
#   while writing; a 64 MiB multipart upload killed half-way and resumed.
# The op in flight at the kill may or may not have happened: after the restart the mount may show
# its before or after state (for a create or overwrite also an empty file: open(O_TRUNC) returned)
# and the journal records which one; from then on that is the expected state. Only that op is in
# doubt; every acknowledged one must be there.
# Usage: crash_test.sh STRATA_BIN SEED_BIN   (skips with 77 without a test server or /dev/fuse)
# Env: STRATA_CRASH_SEED (random): replays the same choices (the kill moments still vary).
# On a failure the journals (every op, in order, and how it ended) and the daemon logs are kept
# in /tmp/strata-crash-failed.*.
set -uo pipefail
strata=$1 seed=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require fuse python3
use_test_server
export LC_ALL=C
run_seed=${STRATA_CRASH_SEED:-$RANDOM}
RANDOM=$run_seed
work=$(mktemp -d /tmp/strata-crash-test.XXXXXX)
mnt=$work/mnt writer=$work/writer.py
mkdir -p "$mnt"
daemon=""           # pid of the running foreground daemon, started here
mount_ep=$ep        # the endpoint the daemon talks to (the fault proxy's in one variant)
proxy=""            # pid of the fault proxy, started here
buckets=()          # emptied at exit
bucket="" cache="" journal="" log=""  # of the current variant

set_fault_rate() { "$strata" fault-rate "$mnt" "$1"; }

start_daemon() {  # start_daemon MOUNT_OPTION...: the daemon in the foreground, in the background
  # Debug logging (flushed line by line) keeps the daemon's view of each operation for a failure.
  "$strata" --log-level debug mount "s3://$bucket" "$mnt" --endpoint "$mount_ep" --cache-dir "$cache" \
    --attr-ttl 1 --drain-timeout 10 -f "$@" >>"$log" 2>&1 &
  daemon=$!
  await_mount 300
}
stop_daemon() {  # clean unmount; the daemon drains (bounded by --drain-timeout) and exits
  [[ -n $daemon ]] || return 0
  unmount_daemon 300 || return 1
  wait "$daemon" 2>/dev/null
  daemon=""
  detach
}
cleanup() {
  [[ -n $daemon ]] && kill_only
  [[ -n $proxy ]] && { kill -TERM "$proxy" 2>/dev/null; wait "$proxy" 2>/dev/null; }
  detach
  empty_buckets
  keep_on_failure crash "journals and daemon logs" \
    "$work"/journal-* "$work"/daemon-*.log "$work"/writer.err "$work"/proxy.log  # not the data
  rm -rf "$work"
}
trap cleanup EXIT

wait_drained() {  # wait_drained [SECONDS]: until queue_depth is 0
  local depth="" start=$SECONDS
  for _ in $(seq $((${1:-90} * 10))); do
    depth=$(stat_of queue_depth)
    [[ $depth == 0 ]] && { echo "     drained in $((SECONDS - start)) s"; return 0; }
    sleep 0.1
  done
  echo "     queue_depth still ${depth:-unknown}; pending:"
  "$strata" queue "$mnt" 2>&1 | head -n 10 | sed 's/^/     | /'
  return 1
}

new_variant() {  # new_variant LABEL: a fresh bucket, cache directory, journal and log
  bucket="strata-crash-$$-$1" cache=$work/cache-$1 journal=$work/journal-$1 log=$work/daemon-$1.log
  buckets+=("$bucket")
  : >"$journal"
  S mb
}

# bucket_holds_model: every file of the journal's final state is in the bucket, byte-identical.
bucket_holds_model() {
  python3 "$writer" expect "$journal" >"$work/expected" || return 1
  local rc=0
  awk '{ print $1 " sha256:" $2 }' "$work/expected" >"$work/compare.list"
  S compare "$work/compare.list" >"$work/compare.out" 2>&1 || rc=$?
  sed 's/^/     /' "$work/compare.out"
  return "$rc"
}
# bucket_has_nothing_else: no key besides the expected files (nothing deleted came back).
bucket_has_nothing_else() {
  S ls "" | sort >"$work/keys" || return 1
  cut -d' ' -f1 "$work/expected" | sort >"$work/expected-keys"
  local extra
  extra=$(comm -13 "$work/expected-keys" "$work/keys")
  [[ -z $extra ]] || echo "     unexpected keys: $(echo "$extra" | tr '\n' ' ')"
  [[ -z $extra ]]
}
object_matches() { S get "$1" "$work/object" && cmp -s "$work/object" "$2"; }  # KEY FILE
is_multipart_etag() { [[ $1 =~ -[0-9]+\"?$ ]]; }
verify_mount() { python3 "$writer" verify "$journal" "$mnt"; }
seed_objects() {  # seed_objects N: N objects put directly, journaled as acknowledged
  local i size
  for ((i = 0; i < $1; i++)); do
    size=$((1024 + RANDOM * 16))
    head -c "$size" /dev/urandom >"$work/seed.bin"
    S put "f0$i" "$work/seed.bin" || return 1
    echo "ack put f0$i $(sha256sum <"$work/seed.bin" | cut -d' ' -f1)" >>"$journal"
  done
}

# one_round LABEL ROUND KILL_AFTER_MS [CHECKS]: the writer runs until the daemon is killed under
# it; CHECKS (a function) runs just before the kill. Failures: the daemon died by itself, an
# operation failed before the kill, or any error other than the dead daemon's.
one_round() {
  local label=$1 round=$2 ms=$3 wpid rc killed_at stopped_at message
  python3 "$writer" run "$journal" "$mnt" "$RANDOM$RANDOM" 2>"$work/writer.err" &
  wpid=$!
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  [[ -z ${4:-} ]] || "$4"
  if ! kill -0 "$daemon" 2>/dev/null; then
    bad "$label round $round: the daemon died by itself"
    daemon_log
  fi
  killed_at=$(date +%s.%N)
  # Detach only once the writer has stopped: a detached mount point is the plain directory
  # below it, where a writer that has not noticed the kill yet would create files that
  # succeed and vanish at the next mount.
  kill_only
  for _ in $(seq 150); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$wpid" 2>/dev/null; then
    bad "$label round $round: the writer hangs on the dead mount"
    kill -9 "$wpid" 2>/dev/null
  fi
  wait "$wpid"; rc=$?
  detach
  read -r stopped_at message < <(tail -n 1 "$work/writer.err")
  echo "     round $round: killed after ${ms} ms; $message"
  local when="after the kill"
  (($(echo "$stopped_at < $killed_at" | bc))) && when="before the kill"
  if [[ $rc -ne 0 && $rc -ne 3 ]]; then
    bad "$label round $round: not an error of a dead daemon, $when (writer exit $rc)"
    grep -v "^$stopped_at " "$work/writer.err" | sed 's/^/     | /'
  elif [[ $rc -eq 3 && $when == "before the kill" ]]; then
    bad "$label round $round: an operation failed while the daemon was alive"
  fi
}

# crash_variant LABEL MOUNT_OPTION...: seeded objects, 3-5 killed rounds, then drain and compare.
crash_variant() {
  local label=$1; shift
  local rounds=$((3 + RANDOM % 3)) r
  new_variant "$label"
  seed_objects 4
  for ((r = 1; r <= rounds; r++)); do
    start_daemon "$@" || { bad "$label round $r: mount"; return; }
    check "$label round $r: after the restart the mount shows every acknowledged change" verify_mount
    one_round "$label" "$r" $((300 + RANDOM % 1701))
  done
  start_daemon "$@" || { bad "$label: final mount"; return; }
  check "$label: after the last restart the mount shows every acknowledged change" verify_mount
  check "$label: the queue drains" wait_drained
  check "$label: no dead letters" test "$(stat_of queue_dead_letters)" = 0
  check "$label: every acknowledged file is in S3, byte-identical" bucket_holds_model
  check "$label: nothing deleted or renamed away is in S3" bucket_has_nothing_else
  stop_daemon
}

cat >"$writer" <<'PY'
"""The crash test's writer and its journal. Modes:
  run JOURNAL MNT SEED     random operations under MNT until one fails or 100000 are done. Exit 3:
                           the daemon is gone (ENOTCONN, ECONNABORTED); 5: another error; 2: a
                           file read back differs from the model. The last line on stderr
                           starts with the time (epoch seconds) the writer stopped.
  verify JOURNAL MNT       resolve the op in doubt from what MNT shows, then compare MNT to the model
  expect JOURNAL          print the final model: NAME SHA256 per line
  copy-then-cut SRC DST MNT   copy SRC to DST, close, then set the fault rate to 1 at once
  cut-after-first-part STRATA MNT   fault rate 0 until some bytes are uploaded, then 1
Journal lines: "begin OP..." before an operation, "ack OP..." once it is acknowledged, and
"resolve NAME=SHA|- ..." for the state an in-doubt op left. OP is one of
put NAME SHA, patch NAME SHA, rename FROM TO, unlink NAME; an acknowledged put ends with
by-fsync or by-close."""
import errno
import fcntl
import hashlib
import os
import random
import struct
import sys
import time

NAMES = [f"f{i:02d}" for i in range(20)]
EMPTY = hashlib.sha256(b"").hexdigest()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def apply(model, op):
    if op[0] in ("put", "patch"):
        model[op[1]] = op[2]
    elif op[0] == "rename":
        model[op[2]] = model.pop(op[1])
    elif op[0] == "unlink":
        del model[op[1]]


def load(path):
    model, pending = {}, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "begin":
                pending = w[1:]
            elif w[0] == "ack":
                apply(model, w[1:])
                pending = None
            elif w[0] == "resolve":
                for item in w[1:]:
                    name, value = item.split("=")
                    if value == "-":
                        model.pop(name, None)
                    else:
                        model[name] = value
                pending = None
    return model, pending


def touched(op):
    return op[1:3] if op[0] == "rename" else op[1:2]


def alternatives(model, op):
    """The states the names an in-doubt op touches may be in: before, after (, empty)."""
    after = dict(model)
    apply(after, op)
    alts = [("before", {n: model.get(n) for n in touched(op)}),
            ("after", {n: after.get(n) for n in touched(op)})]
    if op[0] == "put":
        alts.append(("empty", {op[1]: EMPTY}))
    return alts


def short(state):
    return " ".join(f"{n}={(s or '-')[:12]}" for n, s in sorted(state.items()))


class Journal:
    def __init__(self, path):
        self.f = open(path, "a")

    def write(self, *words):
        self.f.write(" ".join(words) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())


def observe(mnt, name):
    """SHA-256 of MNT/NAME, or None when it does not exist."""
    h = hashlib.sha256()
    try:
        with open(os.path.join(mnt, name), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def verify(journal_path, mnt):
    model, pending = load(journal_path)
    failures = []
    try:
        if pending:
            seen = {n: observe(mnt, n) for n in touched(pending)}
            alts = alternatives(model, pending)
            which = [label for label, state in alts if state == seen]
            if which:
                print(f"     in doubt: {' '.join(pending[:3])[:40]}: the mount shows its {which[0]} state")
            else:
                failures.append(f"in-doubt {' '.join(pending[:3])}: mount shows {short(seen)}; allowed: "
                                + "; ".join(f"{label} {short(s)}" for label, s in alts))
            Journal(journal_path).write("resolve", *(f"{n}={s or '-'}" for n, s in sorted(seen.items())))
            for n, s in seen.items():
                if s is None:
                    model.pop(n, None)
                else:
                    model[n] = s
        for name in sorted(set(NAMES) | set(model)):
            seen = observe(mnt, name)
            if seen != model.get(name):
                failures.append(f"{name}: mount shows {(seen or 'nothing')[:12]}, "
                                f"acknowledged {(model.get(name) or 'deleted')[:12]}")
        listed = set(os.listdir(mnt))
        if listed != set(model):
            failures.append(f"listing: extra {sorted(listed - set(model))}, missing {sorted(set(model) - listed)}")
    except OSError as e:
        failures.append(f"{e.filename}: {e.strerror}")
    for f in failures:
        print("     " + f)
    return 1 if failures else 0


def write_all(fd, data, offset=None):
    view = memoryview(data)
    done = 0
    while done < len(view):
        piece = view[done:done + (256 << 10)]
        n = os.write(fd, piece) if offset is None else os.pwrite(fd, piece, offset + done)
        done += n


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run(journal_path, mnt, seed):
    model, pending = load(journal_path)
    if pending:
        print("writer: an op is still in doubt; run verify first", file=sys.stderr)
        return 4
    journal = Journal(journal_path)
    rng = random.Random(int(seed))
    acked = 0
    kind = name = ""
    try:
        while acked < 100000:
            present = sorted(model)
            absent = [n for n in NAMES if n not in model]
            kinds = ["create"] * 3 * bool(absent)
            if present:
                kinds += ["overwrite"] * 2 + ["patch"] * 2 + ["rename"] * 2
            if len(present) > 3:
                kinds += ["unlink"] * 2
            kind = rng.choice(kinds)
            if kind in ("create", "overwrite"):
                name = rng.choice(absent if kind == "create" else present)
                data = rng.randbytes(int(2 ** rng.uniform(10, 21)))  # 1 KiB to 2 MiB
                op = ["put", name, sha(data)]
                journal.write("begin", *op)
                fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                write_all(fd, data)
                if rng.random() < 0.5:
                    os.fsync(fd)
                    journal.write("ack", *op, "by-fsync")
                    os.close(fd)
                else:
                    os.close(fd)
                    journal.write("ack", *op, "by-close")
            elif kind == "patch":  # read-modify-write of a range, possibly past the end
                name = rng.choice(present)
                fd = os.open(os.path.join(mnt, name), os.O_RDWR)
                old = b""
                while chunk := os.read(fd, 1 << 20):
                    old += chunk
                if sha(old) != model[name]:
                    print(f"{time.time():.6f} read-your-writes: {name} reads as {sha(old)[:12]} ({len(old)} bytes), "
                          f"acknowledged {model[name][:12]}", file=sys.stderr)
                    return 2
                offset = rng.randrange(len(old) + 1)
                patch = rng.randbytes(rng.randint(1, 64 << 10))
                op = ["patch", name, sha(old[:offset] + patch + old[offset + len(patch):])]
                journal.write("begin", *op)
                write_all(fd, patch, offset)
                os.fsync(fd)
                journal.write("ack", *op)
                os.close(fd)
            else:
                name = rng.choice(present)
                if kind == "rename":
                    op = ["rename", name, rng.choice([n for n in NAMES if n != name])]
                    journal.write("begin", *op)
                    os.rename(os.path.join(mnt, op[1]), os.path.join(mnt, op[2]))
                else:
                    op = ["unlink", name]
                    journal.write("begin", *op)
                    os.unlink(os.path.join(mnt, name))
                fsync_dir(mnt)  # what makes a rename or unlink durable under POSIX
                journal.write("ack", *op)
            apply(model, op)
            acked += 1
    except OSError as e:
        # A dead daemon shows as ENOTCONN or ECONNABORTED; anything else came from the daemon
        # (ENOENT for a file that exists, EIO, ...), or from the kernel believing what it said.
        dead = e.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        print(f"{time.time():.6f} writer stopped after {acked} acknowledged ops: {kind} {name}: "
              f"{e.strerror}" + ("" if dead else f" (the model holds {name}: {(model.get(name) or 'nothing')[:12]})"),
              file=sys.stderr)
        return 3 if dead else 5
    print(f"{time.time():.6f} writer finished {acked} acknowledged ops", file=sys.stderr)
    return 0


def expect(journal_path):
    model, pending = load(journal_path)
    if pending:
        print(f"     the last op is still in doubt: {' '.join(pending[:3])}", file=sys.stderr)
        return 1
    for name in sorted(model):
        print(name, model[name])
    return 0


# The control ioctls of fs/control_ioctl.h, sent straight from here: starting `strata stats`
# each time (slow under ASan) let a whole upload finish between two polls. Numbers that drifted
# from the header fail loudly (ENOTTY).
def _ioc(direction, number, size):  # _IOC of <asm-generic/ioctl.h>, type 'S'
    return (direction << 30) | (size << 16) | (ord("S") << 8) | number


TEXT_BYTES = (1 << 14) - 8
STATS = _ioc(2, 1, TEXT_BYTES)  # _IOR: the text of `strata stats`
SET_FAULT_RATE = _ioc(1, 4, 8)  # _IOW: a double


def control(mnt, request, arg):
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return fcntl.ioctl(fd, request, arg)  # a bytearray is filled, and the result returned
    finally:
        os.close(fd)


def set_fault_rate(mnt, rate):
    control(mnt, SET_FAULT_RATE, struct.pack("d", rate))


def stats_text(mnt):
    buffer = bytearray(TEXT_BYTES)
    size = control(mnt, STATS, buffer)
    return buffer[:size].decode()


def copy_then_cut(src, dst, mnt):
    with open(src, "rb") as i, open(dst, "wb") as o:
        while chunk := i.read(1 << 20):
            o.write(chunk)
    set_fault_rate(mnt, 1)  # right after close: before most uploading
    return 0


def cut_after_first_part(strata, mnt):
    """Fault rate 0 until the stats show uploaded bytes, then 1. Polls every 2 ms, 60 s."""
    del strata  # the ioctl is what `strata stats` sends
    set_fault_rate(mnt, 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = stats_text(mnt)
        uploaded = [int(w[1]) for w in map(str.split, stats.splitlines())
                    if len(w) == 2 and w[0] == "queue_bytes_uploaded"]
        if uploaded and uploaded[0] > 0:
            break
        time.sleep(0.002)
    set_fault_rate(mnt, 1)
    return 0


def main(argv):
    mode, args = argv[1], argv[2:]
    return {"run": run, "verify": verify, "expect": expect, "copy-then-cut": copy_then_cut,
            "cut-after-first-part": cut_after_first_part}[mode](*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
PY

echo "== seed $run_seed (STRATA_CRASH_SEED replays the choices)"

echo "== kill -9 while writing, 3-5 rounds"
crash_variant plain

echo "== kill -9 while writing, 30% of S3 requests fail with 503"
crash_variant faults --fault-rate 0.3

echo "== kill -9 while writing through a network that fails 20% of requests (fault proxy)"
start_proxy() {
  rm -f "$work/proxy.port"
  python3 "$(dirname "$0")/fault_proxy.py" --upstream "${ep#http://}" --port-file "$work/proxy.port" \
    --rate 0.2 --faults reset_before,reset_body,reset_after,status_5xx,truncate,garble \
    --seed "$run_seed" --log "$work/proxy.log" >/dev/null 2>&1 &
  proxy=$!
  for _ in $(seq 100); do
    [[ -s $work/proxy.port ]] && { mount_ep="http://127.0.0.1:$(cat "$work/proxy.port")"; return 0; }
    sleep 0.05
  done
  return 1
}
if start_proxy; then
  crash_variant network
  # The independent check: a new mount with an empty cache, straight on S3, and no retry.
  mount_ep=$ep cache=$work/cache-network-fresh
  if start_daemon; then
    check "network: a fresh mount with an empty cache shows every acknowledged change" verify_mount
    stop_daemon
  else
    bad "network: fresh mount"
  fi
  echo "     injected: $(grep -c . "$work/proxy.log" 2>/dev/null || echo 0) faults"
  kill -TERM "$proxy" 2>/dev/null; wait "$proxy" 2>/dev/null; proxy=""
else
  bad "network: the fault proxy did not start"
fi

echo "== S3 unreachable while writing: the writes are durable locally"
offline_checks() {
  local depth keys
  depth=$(stat_of queue_depth)
  check "offline: the queue holds the writes (queue_depth ${depth:-?})" test "${depth:-0}" -gt 0
  keys=$(S ls "" | wc -l)
  check "offline: nothing reached S3 ($keys keys)" test "$keys" -eq 0
}
new_variant offline
if start_daemon --fault-rate 0; then
  check "offline: the new mount is empty" verify_mount
  set_fault_rate 1
  one_round offline 1 1500 offline_checks
  start_daemon --fault-rate 0 || bad "offline: remount"
  check "offline: after the restart the mount shows every acknowledged change" verify_mount
  check "offline: the queue drains" wait_drained
  check "offline: every acknowledged file is in S3, byte-identical" bucket_holds_model
  check "offline: nothing deleted or renamed away is in S3" bucket_has_nothing_else
  stop_daemon
else
  bad "offline: mount"
fi

echo "== 64 MiB multipart upload killed half-way, resumed after the restart"
new_variant multipart
big=$((64 << 20))
head -c "$big" /dev/urandom >"$work/big.bin"
if start_daemon --fault-rate 0 --multipart-threshold 8M --part-size 5M; then
  # S3 is cut off right after close, let through again until the first part is in, then cut
  # off again: the daemon dies with the upload part-way.
  check "multipart: close of the 64 MiB file returns 0" \
    python3 "$writer" copy-then-cut "$work/big.bin" "$mnt/big.bin" "$mnt"
  python3 "$writer" cut-after-first-part "$strata" "$mnt"
  sleep 0.5  # parts in flight finish or fail
  uploaded=$(stat_of queue_bytes_uploaded)
  check "multipart: killed with part of it uploaded ($uploaded of $big bytes)" \
    test "${uploaded:-0}" -gt 0 -a "${uploaded:-0}" -lt "$big"
  kill_daemon
  start_daemon --fault-rate 0 --multipart-threshold 8M --part-size 5M || bad "multipart: remount"
  check "multipart: the queue drains after the restart" wait_drained 120
  again=$(stat_of queue_bytes_uploaded)
  check "multipart: resumed, not restarted: $again bytes uploaded after the restart" \
    test "${again:-$big}" -le $((big - ${uploaded:-0} + (5 << 20)))  # at most one part again
  check "multipart: the object is byte-identical" object_matches big.bin "$work/big.bin"
  etag=$(S head big.bin | awk '$1 == "etag" { print $2 }')
  check "multipart: uploaded in parts (etag $etag)" is_multipart_etag "$etag"
  stop_daemon
else
  bad "multipart: mount"
fi

echo "$passed passed, $failed failed (seed $run_seed, $SECONDS s)"
[[ $failed -eq 0 ]]
