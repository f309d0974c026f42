#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a fixed time.
#   bench/fuzz/run_fuzz.sh [seconds per target, default 60]
# Prints executions and findings per target; exits non-zero when a target found a crash.
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz}
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/src" -I"$root/bpf/include")
libs=(-lnghttp2 -lz -lbrotlidec -lzstd -lfmt)
parsers=("$root"/src/events/parsers/*.cc "$root/src/events/stream_decoder.cc"
         "$root/src/events/message.cc" "$root/src/events/event.cc")

clang++ "${flags[@]}" -o "$out/fuzz_http1" "$root/bench/fuzz/fuzz_http.cc" "${parsers[@]}" "${libs[@]}"
clang++ "${flags[@]}" -DECAP_FUZZ_HTTP2 -o "$out/fuzz_http2" "$root/bench/fuzz/fuzz_http.cc" \
  "${parsers[@]}" "${libs[@]}"
clang++ "${flags[@]}" -o "$out/fuzz_event_decoder" "$root/bench/fuzz/fuzz_event_decoder.cc" \
  "$root/src/modules/openssl/openssl_events.cc" "$root/src/events/event.cc" "${libs[@]}"

status=0
for t in fuzz_http1 fuzz_http2 fuzz_event_decoder; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  log="$out/$t.log"
  if (cd "$out" && "./$t" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >"$log" 2>&1); then
    found=0
  else
    found=1
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "$t: ${secs}s, executions=$execs, crashes=$found (log: $log)"
done
exit $status
