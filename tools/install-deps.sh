#!/usr/bin/env bash
# Installs the Debian 12 packages strata needs to build, test and run its demo (including the
# local Ceph radosgw used as the S3 server). Idempotent: does nothing when all are present.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang-format curl python3 attr ccache
  libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libsqlite3-dev libspdlog-dev
  libpugixml-dev libcli11-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
  ceph-mon ceph-osd radosgw ceph-common
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
