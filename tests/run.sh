#!/usr/bin/env bash
# Builds strata and passes all its tests:
#   0. every tracked *.cc and *.h file is formatted as .clang-format says (else it lists them);
#   1. a RelWithDebInfo build, its unit tests and its integration tests, the latter against a
#      local Ceph radosgw started here on a free loopback port and stopped on exit;
#   2. clang's thread-safety analysis, when .ci/clang-thread-safety.sh exists;
#   3. the unit and integration tests again built with AddressSanitizer + UBSan;
#   4. the unit tests built with ThreadSanitizer.
# Installs its Debian packages first (tools/install-deps.sh). Env: JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-2}

bash tools/install-deps.sh

echo "== clang-format"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t sources < <(git ls-files '*.cc' '*.h')
else
  mapfile -t sources < <(find base backends cache fs tools tests -name '*.cc' -o -name '*.h')
fi
unformatted=()
for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]} > 0)); then
  echo "these files are not formatted as .clang-format says (run clang-format -i on them):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi

# Every build goes through ccache: CI builds a fresh clone each time, and most of its sources
# are the same as last time. Keyed by content, relative to the clone (CCACHE_BASEDIR), so a
# clone in another directory hits too. STRATA_NO_CCACHE=1 builds without it.
launcher=()
if [[ ${STRATA_NO_CCACHE:-0} != 1 ]] && command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export STRATA_CMAKE_LAUNCHER="${launcher[*]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build -j"$jobs"

# A free port for radosgw (it also uses the next two for its monitor).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for p in $(seq 7490 10 7690); do
  if port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)); then port=$p; break; fi
done
[[ -n $port ]] || { echo "no free loopback port for radosgw" >&2; exit 1; }

export RGW_DIR
RGW_DIR=$(mktemp -d /tmp/strata-test-rgw.XXXXXX)
export RGW_PORT=$port RGW_ACCESS_KEY=strata-test-key RGW_SECRET_KEY=strata-test-secret
cleanup() {
  bash "$root/tests/s3/rgw.sh" stop || true
  rm -rf "$RGW_DIR"
}
trap cleanup EXIT
bash tests/s3/rgw.sh start

export STRATA_TEST_ENDPOINT="http://127.0.0.1:$port"
export STRATA_TEST_ACCESS_KEY=$RGW_ACCESS_KEY STRATA_TEST_SECRET_KEY=$RGW_SECRET_KEY

echo "== tests (RelWithDebInfo)"
ctest --test-dir build --output-on-failure -j"$jobs"

if [[ -f .ci/clang-thread-safety.sh ]]; then
  echo "== clang thread-safety analysis"
  bash .ci/clang-thread-safety.sh
fi

echo "== tests under AddressSanitizer + UBSan"
# -O1: ASan's advice for speed; stacks stay exact enough with frame pointers kept.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DSTRATA_SANITIZE=address "${launcher[@]}" \
  -DSTRATA_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# The same shell tests on less data (STRATA_TEST_QUICK: a 256 MiB file, 2,000 entries, fewer
# fault rounds): sanitized code is several times slower, and the full sizes have passed above.
STRATA_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== unit tests under ThreadSanitizer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread "${launcher[@]}" \
  -DSTRATA_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target strata_unit_tests
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan -L unit \
  --output-on-failure -j"$jobs"
