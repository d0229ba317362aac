#!/usr/bin/env bash
# Install the Debian packages agtrace's build, tests and benchmarks need. Idempotent: when all
# are present it changes nothing and does not touch the network. Needs root.
set -euo pipefail
PKGS=(
  make gcc pkg-config clang llvm bpftool binutils
  libbpf-dev libelf-dev zlib1g-dev libcurl4-openssl-dev libcjson-dev libcapstone-dev
  libcmocka-dev libhttp-parser-dev
  python3 python3-pytest golang-go
  util-linux procps
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run \`sudo make deps\` to install them" >&2
  exit 2
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
