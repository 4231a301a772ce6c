#!/usr/bin/env bash
# The strata demo: installs what it needs, builds strata, starts a local S3 server (Ceph radosgw
# on 127.0.0.1:7480), seeds a bucket "demo" with a few files and runs `strata check` against it,
# then shows the messages for a wrong secret, a missing bucket and a closed port.
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
if [[ $keep -eq 0 ]]; then trap 'bash "$root/tests/s3/rgw.sh" stop' EXIT; fi
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
if [[ $keep -eq 1 ]]; then
  echo "The S3 server keeps running on $endpoint (access key $RGW_ACCESS_KEY)."
  echo "Stop it with: RGW_DIR=$RGW_DIR RGW_PORT=$RGW_PORT bash tests/s3/rgw.sh stop"
fi
echo "demo done"
