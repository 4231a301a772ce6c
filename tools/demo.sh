#!/usr/bin/env bash
# The strata demo: installs what it needs, builds strata, starts a local S3 server (Ceph radosgw
# on 127.0.0.1:7480), seeds a bucket "demo" with a few files, runs `strata check` against it,
# shows the messages for a wrong secret, a missing bucket and a closed port, then mounts the
# bucket, reads files through it (cold, then from the cache), writes through it (new files, a
# directory, a rename, an append), shows the upload queue and the objects in the bucket, and
# prints `strata stats`.
# Usage: bash tools/demo.sh [--keep]   (--keep leaves the S3 server running afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
keep=0
[[ ${1:-} == --keep ]] && keep=1

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}" --target strata
strata=$root/build/tools/strata

export RGW_DIR=${RGW_DIR:-/tmp/strata-demo-rgw} RGW_PORT=${RGW_PORT:-7480}
export RGW_ACCESS_KEY=demo-access-key RGW_SECRET_KEY=demo-secret-key
endpoint="http://127.0.0.1:$RGW_PORT"
mnt=/tmp/strata-demo-mnt cache=/tmp/strata-demo-cache
mkdir -p "$mnt"
unmount() { if grep -qs " $mnt fuse" /proc/mounts; then umount "$mnt"; fi; }
if [[ $keep -eq 0 ]]; then trap 'unmount; bash "$root/tests/s3/rgw.sh" stop' EXIT; fi
echo "== starting the local S3 server (about 15 s)"
bash tests/s3/rgw.sh start

# The demo seeds with curl so that it depends on nothing strata itself provides.
s3() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -u "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
echo "== seeding bucket 'demo'"
s3 -X PUT "$endpoint/demo" >/dev/null || true
s3 -X PUT --data-binary @README.md "$endpoint/demo/docs/README.md" >/dev/null
s3 -X PUT --data-binary "hello from strata" "$endpoint/demo/hello.txt" >/dev/null
s3 -X PUT --data-binary "a key with spaces" "$endpoint/demo/docs/notes%20with%20spaces.txt" >/dev/null
head -c $((8 * 1024 * 1024)) /dev/urandom | s3 -X PUT --data-binary @- "$endpoint/demo/data/random-8MiB.bin" >/dev/null

export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
echo
echo "== strata check s3://demo --endpoint $endpoint"
"$strata" check s3://demo --endpoint "$endpoint"
echo
echo "== strata check s3://demo/docs --endpoint $endpoint --read-only"
"$strata" check s3://demo/docs --endpoint "$endpoint" --read-only
echo
echo "== what failures look like (each of these is expected to fail)"
AWS_SECRET_ACCESS_KEY=wrong-secret "$strata" check s3://demo --endpoint "$endpoint" | grep FAIL || true
"$strata" check s3://no-such-bucket --endpoint "$endpoint" | grep FAIL || true
"$strata" check s3://demo --endpoint http://127.0.0.1:1 | grep FAIL || true
echo
echo "== strata mount s3://demo $mnt --endpoint $endpoint --cache-dir $cache"
unmount
"$strata" mount s3://demo "$mnt" --endpoint "$endpoint" --cache-dir "$cache"
echo "-- ls -lR $mnt"
ls -lR "$mnt"
echo "-- cat $mnt/hello.txt"
cat "$mnt/hello.txt"; echo
echo "-- reading the 8 MiB file twice (cold from S3, then from the cache)"
for pass in cold warm; do
  start=$(date +%s%N)
  sum=$(sha256sum <"$mnt/data/random-8MiB.bin" | cut -c1-16)
  echo "   $pass: sha256 $sum... in $((($(date +%s%N) - start) / 1000000)) ms"
done
echo "-- writing: a new file, a directory, a rename and an edit, visible at once"
echo "written through strata" >"$mnt/notes.txt"
mkdir -p "$mnt/projects/2026"
cp "$mnt/hello.txt" "$mnt/projects/2026/copy.txt"
mv "$mnt/notes.txt" "$mnt/projects/notes.txt"
echo "appended line" >>"$mnt/projects/notes.txt"
chmod 600 "$mnt/projects/notes.txt"
ls -l "$mnt/projects" "$mnt/projects/2026"
echo "-- strata queue $mnt (uploads run in the background)"
"$strata" queue "$mnt"
for _ in $(seq 100); do
  [[ $("$strata" stats "$mnt" | awk '$1 == "queue_depth" { print $2 }') == 0 ]] && break
  sleep 0.1
done
echo "-- in the bucket, straight from S3 (not through the mount):"
for key in projects/ projects/2026/copy.txt projects/notes.txt notes.txt; do
  if meta=$(s3 -I "$endpoint/demo/$key"); then
    echo "   $key: $(grep -i '^x-amz-meta-mode' <<<"$meta" | tr -d '\r')"
  else
    echo "   $key: absent"
  fi
done
echo "   projects/notes.txt holds: $(s3 "$endpoint/demo/projects/notes.txt" | tr '\n' ' ')"
echo "-- strata stats $mnt"
"$strata" stats "$mnt" | grep -E "s3_gets|s3_bytes|memory_hits|disk_hits|readahead|metadata_list|queue_"
echo
if [[ $keep -eq 1 ]]; then
  echo "The S3 server keeps running on $endpoint (access key $RGW_ACCESS_KEY), mounted on $mnt."
  echo "Unmount with: umount $mnt"
  echo "Stop the server with: RGW_DIR=$RGW_DIR RGW_PORT=$RGW_PORT bash tests/s3/rgw.sh stop"
fi
echo "demo done"
