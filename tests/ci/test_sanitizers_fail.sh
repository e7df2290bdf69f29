#!/usr/bin/env bash
# Proves that the CI jobs tools/check-sanitizers and tools/fuzz FAIL when there is something to
# find, and pass when there is not. It builds a miniature opnc in a temporary folder: the real
# CMakeLists.txt and fuzz/CMakeLists.txt (so the real OPNC_SANITIZE, OPNC_TSAN and OPNC_FUZZ options
# are what is tested), a core of one file with deliberate bugs, a Catch2 test and a fuzz target
# that trigger them. OPNC_CANARY selects the bug, so one build serves every case:
#   none   no bug: every job must pass (the control: the failures below come from the bugs)
#   heap   heap-buffer-overflow          -> check-sanitizers --only asan fails (AddressSanitizer)
#   ubsan  signed integer overflow       -> check-sanitizers --only asan fails (UBSan)
#   leak   a leaked allocation           -> check-sanitizers --only asan fails (LeakSanitizer)
#   race   an unsynchronised counter     -> check-sanitizers --only tsan fails (ThreadSanitizer)
#   fuzz   a crash on a seed input       -> tools/fuzz fails and leaves the input as an artifact
# Usage: bash tests/ci/test_sanitizers_fail.sh   (needs clang-19 and libclang-rt-19-dev for the
# fuzz part; exit status 0 when every expectation held). Takes a few minutes: three small builds.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/opnc-ci-canary-XXXXXX")"
trap 'rm -rf "$work"' EXIT
project="$work/project"
mkdir -p "$project/cpp/src" "$project/cpp/include/opnc" "$project/tests/cpp" "$project/fuzz/corpus/fuzz_canary"
cp "$repo/CMakeLists.txt" "$project/CMakeLists.txt"
cp "$repo/fuzz/CMakeLists.txt" "$project/fuzz/CMakeLists.txt"

cat >"$project/cpp/include/opnc/canary.hpp" <<'EOF'
#pragma once
// Deliberate bugs, each reached only when OPNC_CANARY names it.
#include <cstddef>
#include <string_view>
namespace opnc::canary {
std::string_view selected();  // the value of OPNC_CANARY, "" when unset
int read_element(std::size_t size, std::size_t index);
int add(int a, int b);
void* allocate(std::size_t size);
int count(int threads, int per_thread, bool locked);
int parse(const unsigned char* data, std::size_t size);
}  // namespace opnc::canary
EOF
cat >"$project/cpp/src/canary.cpp" <<'EOF'
#include "opnc/canary.hpp"
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
namespace opnc::canary {
std::string_view selected() {
    const char* value = std::getenv("OPNC_CANARY");
    return value ? value : "";
}
int read_element(std::size_t size, std::size_t index) {
    std::vector<int> values(size, 7);
    return values.data()[index];
}
int add(int a, int b) { return a + b; }
void* allocate(std::size_t size) { return std::malloc(size); }
int count(int threads, int per_thread, bool locked) {
    int counter = 0;
    std::mutex mutex;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                if (locked) {
                    std::lock_guard guard(mutex);
                    ++counter;
                } else {
                    ++counter;
                }
            }
        });
    for (auto& worker : workers) worker.join();
    return counter;
}
int parse(const unsigned char* data, std::size_t size) {
    if (selected() == "fuzz" && size >= 3 && std::memcmp(data, "BUG", 3) == 0) {
        volatile int* nowhere = nullptr;
        return *nowhere;
    }
    return static_cast<int>(size);
}
}  // namespace opnc::canary
EOF
cat >"$project/tests/cpp/main.cpp" <<'EOF'
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
EOF
cat >"$project/tests/cpp/test_canary.cpp" <<'EOF'
#include <catch2/catch.hpp>
#include <climits>
#include <cstdlib>
#include "opnc/canary.hpp"
TEST_CASE("memory canary", "[canary]") {
    const auto bug = opnc::canary::selected();
    CHECK(opnc::canary::read_element(4, bug == "heap" ? 4 : 3) == 7);
    CHECK(opnc::canary::add(bug == "ubsan" ? INT_MAX : 1, 1) != 0);
    void* memory = opnc::canary::allocate(64);
    REQUIRE(memory != nullptr);
    if (bug != "leak") std::free(memory);
}
TEST_CASE("thread canary", "[threads]") {
    const bool racy = opnc::canary::selected() == "race";
    const int total = opnc::canary::count(4, 20000, !racy);
    CHECK(total > 0);
}
EOF
cat >"$project/fuzz/fuzz_canary.cpp" <<'EOF'
#include <cstddef>
#include <cstdint>
#include "opnc/canary.hpp"
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)opnc::canary::parse(data, size);
    return 0;
}
EOF
printf 'fine' >"$project/fuzz/corpus/fuzz_canary/fine"
printf 'BUG!' >"$project/fuzz/corpus/fuzz_canary/bug"

passed=0
failures=()
# expect <pass|fail> <pattern or ""> <description> -- <command...>: runs the command with its
# output in a log, checks the exit status and that the log shows the expected report.
expect() {
    local want="$1" pattern="$2" what="$3"
    shift 4
    local log="$work/log-$((passed + ${#failures[@]}))" status=0
    echo "== test_sanitizers_fail: $what" >&2
    "$@" >"$log" 2>&1 || status=$?
    if [[ "$want" == pass && $status -ne 0 ]]; then
        failures+=("$what: expected success, got exit status $status")
        tail -n 30 "$log" >&2
    elif [[ "$want" == fail && $status -eq 0 ]]; then
        failures+=("$what: expected a failure, got exit status 0")
        tail -n 30 "$log" >&2
    elif [[ -n "$pattern" ]] && ! grep -qE "$pattern" "$log"; then
        failures+=("$what: exit status $status, but the log lacks /$pattern/")
        tail -n 30 "$log" >&2
    else
        passed=$((passed + 1))
        echo "   ok (exit status $status)" >&2
    fi
}

sanitizers=(bash "$repo/tools/check-sanitizers" --source-dir "$project" --build-root "$work/build")
fuzz=(bash "$repo/tools/fuzz" --source-dir "$project" --build-dir "$work/build/fuzz" --seconds 5)

expect pass "all sanitizer jobs clean" "no bug: check-sanitizers passes" -- env OPNC_CANARY=none "${sanitizers[@]}"
expect fail "AddressSanitizer: heap-buffer-overflow" "heap overflow: asan job fails" -- \
    env OPNC_CANARY=heap "${sanitizers[@]}" --only asan
expect fail "runtime error: signed integer overflow" "signed overflow: asan job (UBSan) fails" -- \
    env OPNC_CANARY=ubsan "${sanitizers[@]}" --only asan
expect fail "LeakSanitizer: detected memory leaks" "leak: asan job (LSan) fails" -- \
    env OPNC_CANARY=leak "${sanitizers[@]}" --only asan
expect fail "ThreadSanitizer: data race" "data race: tsan job fails" -- \
    env OPNC_CANARY=race "${sanitizers[@]}" --only tsan
expect pass "without a finding" "no bug: fuzz passes" -- env OPNC_CANARY=none "${fuzz[@]}"
expect fail "fuzz: replay with: .*/artifacts/fuzz_canary/crash-" "crash on a seed: fuzz fails, keeps the input" -- \
    env OPNC_CANARY=fuzz "${fuzz[@]}"

echo "test_sanitizers_fail: $passed passed, ${#failures[@]} failed" >&2
if ((${#failures[@]})); then
    printf '  FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
