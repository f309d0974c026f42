#!/usr/bin/env bash
# Installs every Debian package that building and testing ecapture needs. Idempotent: when
# everything is present it only runs dpkg-query and returns in well under a second.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  libbenchmark-dev libcapstone-dev libpcap-dev libprotobuf-dev protobuf-compiler
  libnghttp2-dev libzstd-dev libbrotli-dev libssl-dev libwebsocketpp-dev libasio-dev libcpp-httplib-dev
  librdkafka-dev
)
test_pkgs=(
  openssl curl nginx python3 python3-protobuf iproute2 procps bsdutils psmisc tshark ca-certificates
  android-libboringssl android-boringssl binutils util-linux
  mariadb-server mariadb-client libmariadb-dev postgresql-15 postgresql-client-15 libpq-dev
  bash zsh dash golang-go hey
  gnutls-bin wget libnss3-tools libnss3-dev
  prometheus python3-yaml systemd
  chromium chromium-driver python3-selenium
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: not root; skipping package installation (run 'sudo make setup' once)" >&2
  exit 0
fi

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
# node is used by the e2e tests as a target that links OpenSSL statically; any build will do.
command -v node >/dev/null 2>&1 || missing+=(nodejs)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# tracefs is where uprobes are registered; make sure it is mounted.
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
