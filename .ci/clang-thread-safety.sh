#!/usr/bin/env bash
# Builds the libraries and the strata binary with clang and -Wthread-safety -Werror, so that the
# GUARDED_BY / REQUIRES / EXCLUDES annotations (base/thread_annotations.h, base/mutex.h) are
# checked; fails on any warning. Installs clang when clang++ is missing. Build directory:
# build-clang. Env: JOBS (default 2); STRATA_CMAKE_LAUNCHER: compiler-launcher options for cmake
# (tests/run.sh sets them when it builds through ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}

if ! command -v clang++ >/dev/null 2>&1; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "installing: clang"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    clang >/dev/null
fi

# The analysis runs in the front end: no optimisation and no debug info, to build fast.
# shellcheck disable=SC2086  # the launcher options are separate words
CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 \
  -DCMAKE_CXX_FLAGS="-Wthread-safety -Werror" \
  -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF ${STRATA_CMAKE_LAUNCHER:-} >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cmake --build build-clang -j"$jobs" 2>&1 | tee "$log" || status=$?
if ((status != 0)); then
  echo "clang thread-safety build failed" >&2
  exit "$status"
fi
if grep -q "warning:" "$log"; then
  echo "clang thread-safety build printed warnings" >&2
  exit 1
fi
echo "clang thread-safety analysis: no warnings"
