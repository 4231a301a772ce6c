#!/usr/bin/env bash
# `strata check` against the local S3 server: passes with good credentials, and fails with the
# right words for a wrong secret, an unknown access key, a missing bucket, a closed port, a bad
# URL and no credentials at all. Never prints the secret. Usage: check_command_test.sh STRATA_BIN
set -uo pipefail
strata=$1
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require
ep=$STRATA_TEST_ENDPOINT key=$STRATA_TEST_ACCESS_KEY secret=$STRATA_TEST_SECRET_KEY
bucket="strata-check-$$"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

s3curl() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -u "$key:$secret" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
s3curl -X PUT "$ep/$bucket" >/dev/null || { echo "cannot create bucket $bucket"; exit 1; }
s3curl -X PUT --data-binary "hello" "$ep/$bucket/data/one.txt" >/dev/null
s3curl -X PUT --data-binary "" "$ep/$bucket/data/sub/" >/dev/null

# expect NAME WANT_STATUS WANT_TEXT -- command...: runs it with a clean environment + HOME=$tmp.
expect() {
  local name=$1 want_status=$2 want_text=$3; shift 4
  local out status
  out=$(env -i PATH="$PATH" HOME="$tmp" "$@" 2>&1); status=$?
  if [[ $status -ne $want_status ]] || ! grep -qF -- "$want_text" <<<"$out"; then
    bad "$name: exit $status (want $want_status), want text: $want_text"; echo "$out" | sed 's/^/    /'
  elif grep -qF -- "$secret" <<<"$out"; then
    bad "$name: the secret key appears in the output"
  else
    ok "$name"
  fi
}

envkeys=(AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret")
expect "good credentials pass every step" 0 "[ ok ] delete" -- \
  env "${envkeys[@]}" "$strata" check "s3://$bucket/data" --endpoint "$ep"
expect "listing counts files and directories" 0 "1 files, 1 directories" -- \
  env "${envkeys[@]}" "$strata" check "s3://$bucket/data/" --endpoint "$ep" --read-only
expect "read-only skips the write" 0 "[ ok ] list" -- \
  env "${envkeys[@]}" "$strata" check "s3://$bucket" --endpoint "$ep" --read-only
out=$(env "${envkeys[@]}" "$strata" check "s3://$bucket" --endpoint "$ep" --read-only)
if grep -q write <<<"$out"; then bad "read-only ran a write"; fi
expect "wrong secret" 1 "signature mismatch: check the secret key for the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)" -- \
  env AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY=not-the-secret "$strata" check \
  "s3://$bucket" --endpoint "$ep"

mkdir -p "$tmp/.aws"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n[broken]\naws_access_key_id = %s\naws_secret_access_key = nope\n' \
  "$key" "$secret" "$key" >"$tmp/.aws/credentials"
expect "credentials file, default profile" 0 "shared credentials file" -- \
  "$strata" check "s3://$bucket" --endpoint "$ep"
expect "wrong secret in a profile names the profile" 1 "check the secret key for shared credentials file $tmp/.aws/credentials, profile broken" -- \
  "$strata" check "s3://$bucket" --endpoint "$ep" --profile broken
expect "missing profile" 1 "profile nosuch not found" -- \
  "$strata" check "s3://$bucket" --endpoint "$ep" --profile nosuch
rm -rf "$tmp/.aws"

expect "unknown access key" 1 "the server does not know access key" -- \
  env AWS_ACCESS_KEY_ID=AKIDUNKNOWN AWS_SECRET_ACCESS_KEY=x "$strata" check "s3://$bucket" \
  --endpoint "$ep"
expect "missing bucket" 1 "bucket 'strata-no-such-bucket' does not exist" -- \
  env "${envkeys[@]}" "$strata" check s3://strata-no-such-bucket --endpoint "$ep"
expect "closed port" 1 "cannot connect to http://127.0.0.1:1" -- \
  env "${envkeys[@]}" "$strata" check "s3://$bucket" --endpoint http://127.0.0.1:1
expect "no credentials anywhere" 1 "no AWS credentials found" -- \
  "$strata" check "s3://$bucket" --endpoint "$ep"
expect "not an s3 URL" 2 "expected s3://BUCKET[/PREFIX]" -- \
  env "${envkeys[@]}" "$strata" check "http://$bucket" --endpoint "$ep"
expect "bad endpoint" 2 "endpoint must start with http:// or https://" -- \
  env "${envkeys[@]}" "$strata" check "s3://$bucket" --endpoint 127.0.0.1:7
expect "unknown option" 2 "strata: The following argument was not expected: --no-such-option" -- \
  "$strata" check "s3://$bucket" --no-such-option
expect "missing argument" 2 "strata: url is required (see --help)" -- "$strata" check
expect "unknown subcommand" 2 "strata: A subcommand is required (see --help)" -- \
  "$strata" frobnicate
expect "invalid value of a mount option" 2 "strata mount: --memory-cache: not a size: 'lots'" -- \
  "$strata" mount "s3://$bucket" "$tmp" --memory-cache lots
expect "help" 0 "--read-only" -- "$strata" check --help
expect "top-level help" 0 "check" -- "$strata" --help

s3curl -X DELETE "$ep/$bucket/data/one.txt" >/dev/null
s3curl -X DELETE "$ep/$bucket/data/sub/" >/dev/null
s3curl -X DELETE "$ep/$bucket" >/dev/null
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
