#!/usr/bin/env bash
# Fuzz campaign: builds every libFuzzer target (clang, ASan + UBSan, -DECAPTURE_FUZZ=ON) and runs
# each in turn for SECONDS, niced, with one corpus directory per target that is seeded at run time
# from the real libraries and Go binaries of this machine (nothing large is committed).
#   bench/fuzz/run_campaign.sh SECONDS [target ...]
# Environment: FUZZ_OUT (default <repo>/build-fuzz), FUZZ_JOBS (build jobs, default 2).
# Prints executions, coverage and findings per target; exits non-zero when a target found one.
# Findings land in $FUZZ_OUT/findings/<target>-crash-*; minimise one with
#   $FUZZ_OUT/bench/fuzz/<target> -minimize_crash=1 -runs=10000 <file>
set -euo pipefail
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [target ...]" >&2
  exit 2
fi
secs=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz}
all=(fuzz_elf fuzz_go_binary fuzz_version_sniff fuzz_decompress fuzz_pcap_filter fuzz_http1
     fuzz_http2 fuzz_event_decoder fuzz_api_config)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

mkdir -p "$out"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache
                                          -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECAPTURE_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >"$out/cmake.log"

lib=/usr/lib/$(uname -m)-linux-gnu
seeds=$out/seeds
rm -rf "$seeds"
mkdir -p "$seeds" "$out/findings"

# Writes $2 (a file) into seed directory $1 behind the one-byte prefix $3 (octal escape).
prefixed() {
  mkdir -p "$seeds/$1"
  { printf "$3"; cat "$2"; } >"$seeds/$1/$(basename "$2")-$4"
}

seed_elf() {
  mkdir -p "$seeds/fuzz_elf"
  # Small real shared objects and executables: every header layout the loader sees here.
  local f n=0
  while IFS= read -r -d '' f; do
    [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] || continue
    cp "$f" "$seeds/fuzz_elf/"
    n=$((n + 1))
    [[ $n -lt 40 ]] || break
  done < <(find "$lib" /usr/bin -maxdepth 1 -type f -size -48k -print0 2>/dev/null)
  # The first 48 KiB of libssl: headers, .dynsym, versions and .dynstr of the real target.
  head -c 49152 "$lib/libssl.so.3" >"$seeds/fuzz_elf/libssl-head"
}

seed_go() {
  local gobin=$seeds/gobin
  mkdir -p "$seeds/fuzz_go_binary" "$gobin"
  if command -v go >/dev/null; then
    # A real Go TLS program, unstripped and stripped (pclntab lookup), and its pclntab alone.
    (cd "$root/tests/fixtures/gotls" && export GO111MODULE=off GOCACHE=$out/gocache HOME=$out &&
      go build -o "$gobin/tls" main.go &&
      go build -ldflags='-s -w' -o "$gobin/tls-stripped" main.go) >/dev/null 2>&1 || true
  fi
  for f in "$gobin"/tls "$gobin"/tls-stripped /usr/lib/go*/pkg/tool/*/buildid; do
    [[ -f $f ]] || continue
    prefixed fuzz_go_binary "$f" '\000' whole
    if objcopy --dump-section .gopclntab="$gobin/pcln" "$f" 2>/dev/null; then
      # The header and the start of the function table; the fuzzer grows it from there.
      head -c 65536 "$gobin/pcln" >"$gobin/pcln-$(basename "$f")"
      prefixed fuzz_go_binary "$gobin/pcln-$(basename "$f")" '\001' pclntab
    fi
  done
}

seed_sniff() {
  mkdir -p "$seeds/fuzz_version_sniff"
  # Windows of the real libcrypto around its version string, at varied alignments.
  python3 - "$lib/libcrypto.so.3" "$seeds/fuzz_version_sniff" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'OpenSSL 3.')
for i, (before, after) in enumerate([(0, 64), (100, 300), (2000, 2000), (7, 129)]):
    if at >= 0:
        open(f'{sys.argv[2]}/libcrypto-{i}', 'wb').write(bytes([i * 37]) + data[max(0, at - before):at + after])
open(f'{sys.argv[2]}/boring', 'wb').write(b'\x05' + b'x' * 300 + b'OpenSSL 1.1.1 (compatible; BoringSSL)\0BoringSSL')
EOF
}

seed_decompress() {
  mkdir -p "$seeds/fuzz_decompress"
  local text=$seeds/plain
  head -c 20000 "$root/README.md" >"$text"
  # Index into the target's encoding list: 0 gzip, 1 deflate, 3 zstd.
  { printf '\000'; gzip -c "$text"; } >"$seeds/fuzz_decompress/gzip"
  python3 -c 'import sys,zlib; sys.stdout.buffer.write(b"\x01" + zlib.compress(open(sys.argv[1],"rb").read()))' \
    "$text" >"$seeds/fuzz_decompress/deflate"
  { printf '\003'; zstd -q -c "$text"; } >"$seeds/fuzz_decompress/zstd"
  # A small bomb: 16 MiB of zeros in a few KiB.
  { printf '\200'; head -c 16777216 /dev/zero | gzip -9 -c; } >"$seeds/fuzz_decompress/bomb"
}

seed_api() {
  mkdir -p "$seeds/fuzz_api_config"
  local i=0
  for body in '{"pid":1234,"uid":0,"is_hex":true}' \
      '{"libssl":"/usr/lib/x86_64-linux-gnu/libssl.so.3","model":"pcap","pcapfile":"/tmp/x.pcapng","ifname":"lo","pcapfilter":"tcp port 443"}' \
      '{"model":"keylog","keylogfile":"/tmp/k.log","truncate_size":16,"per_cpu_map_size":8192}' \
      '{"elfpath":"/usr/bin/x","model":"text","btf_mode":1}' '{"bashpath":"/bin/bash","errno":-1}' \
      '{"mysqldpath":"/usr/sbin/mariadbd","funcname":"dispatch_command","offset":0}' \
      '{"debug":false,"logger_addr":"","map_size":1024,"Pid":"x"}'; do
    for m in 0 1 2 3 4 5 6 7; do
      { printf "\\$(printf '%03o' "$m")"; printf '%s' "$body"; } >"$seeds/fuzz_api_config/$i-$m"
    done
    i=$((i + 1))
  done
}

seed_pcap() {
  mkdir -p "$seeds/fuzz_pcap_filter"
  local frame
  # An Ethernet + IPv4 + TCP frame to 127.0.0.1:443.
  frame='\000\000\000\000\000\000\000\000\000\000\000\000\010\000\105\000\000\050\000\001\000\000\100\006\000\000\177\000\000\001\177\000\000\001\325\000\001\273\000\000\000\001\000\000\000\000\120\002\377\377\000\000\000\000'
  local i=0
  for expr in 'tcp port 443' 'host 127.0.0.1 and not udp' 'ip[9] == 6 && tcp[13] & 2 != 0' \
      'portrange 1-1024 or vlan 3' 'ether proto 0x0800' 'len > 60 and (src net 10.0.0.0/8)'; do
    { printf '%s\n' "$expr"; printf "$frame"; } >"$seeds/fuzz_pcap_filter/$i"
    i=$((i + 1))
  done
}

seed_streams() {
  mkdir -p "$seeds/fuzz_http1" "$seeds/fuzz_http2" "$seeds/fuzz_event_decoder"
  printf '\007GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    >"$seeds/fuzz_http1/req"
  { printf '\020HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 25\r\n\r\n';
    printf 'hello hello hello' | gzip -c | head -c 25; } >"$seeds/fuzz_http1/gzip"
  # SETTINGS, then HEADERS (":method: GET" indexed) with END_STREAM on stream 1.
  printf '\005\000\000\000\004\000\000\000\000\000\000\000\001\001\005\000\000\000\001\202' \
    >"$seeds/fuzz_http2/get"
  printf '\000\000' >"$seeds/fuzz_event_decoder/empty"
}

max_len_of() {
  case $1 in
    fuzz_elf) echo 65536 ;;
    fuzz_go_binary) echo 4194304 ;;
    fuzz_version_sniff) echo 16384 ;;
    fuzz_decompress) echo 65536 ;;
    *) echo 8192 ;;
  esac
}

status=0
printf '%-20s %8s %12s %10s %8s %8s %s\n' target seconds execs exec/s cov features findings
for t in "${targets[@]}"; do
  # Built one at a time, right before it runs (the API-config target needs the whole library).
  if ! nice -n 19 cmake --build "$out" -j"${FUZZ_JOBS:-2}" --target "$t" >>"$out/build.log" 2>&1; then
    echo "$t: build failed (see $out/build.log)" >&2
    status=1
    continue
  fi
  case $t in
    fuzz_elf) seed_elf ;;
    fuzz_go_binary) seed_go ;;
    fuzz_version_sniff) seed_sniff ;;
    fuzz_decompress) seed_decompress ;;
    fuzz_api_config) seed_api ;;
    fuzz_pcap_filter) seed_pcap ;;
    *) seed_streams ;;
  esac
  corpus=$out/corpus/$t
  mkdir -p "$corpus" "$seeds/$t"
  # Past findings and the committed minimised corpora (the small ones) seed their target too.
  for d in "$root/tests/fixtures/fuzz/$t" "$root/bench/fuzz/corpus/$t"; do
    if [[ -d $d ]]; then cp "$d"/* "$seeds/$t/"; fi
  done
  log=$out/$t.log
  found=0
  # -fork would use more cores than this machine can spare; one process, niced.
  if ! (cd "$out" && nice -n 19 "$out/bench/fuzz/$t" -max_total_time="$secs" \
        -max_len="$(max_len_of "$t")" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/findings/$t-" "$corpus" "$seeds/$t" >"$log" 2>&1); then
    found=1
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  printf '%-20s %8s %12s %10s %8s %8s %s\n' "$t" "$secs" "$execs" "$rate" "$cov" "$ft" \
    "$([[ $found == 1 ]] && echo "YES (see $log)" || echo none)"
done
exit $status
