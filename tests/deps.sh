#!/usr/bin/env bash
# Install what agtrace's build, tests and benchmarks need: Debian packages, and the Node SDKs
# the tests drive (exactly as tests/node/package-lock.json pins them). Idempotent: when all is
# present it changes nothing and touches no network. Installing needs root.
set -euo pipefail
PKGS=(
  make gcc pkg-config clang llvm bpftool binutils
  libbpf-dev libelf-dev zlib1g-dev libcurl4-openssl-dev libcjson-dev libcapstone-dev
  libcmocka-dev libhttp-parser-dev libbrotli-dev libssl-dev libmicrohttpd-dev libmsgpack-dev
  libnghttp2-dev libpcre2-dev protobuf-c-compiler libprotobuf-c-dev libdeflate-dev
  python3 python3-pytest python3-msgpack golang-go openssl gnutls-bin
  util-linux procps bpftrace prometheus python3-yaml yamllint gdb
)
# The machine's own Node (any recent one) will do; else Debian's.
command -v node >/dev/null && command -v npm >/dev/null || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
elif [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run \`sudo make deps\` to install them" >&2
  exit 2
else
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps: done"
fi

node_dir="$(cd "$(dirname "$0")" && pwd)/node"
stamp="$node_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$node_dir/package-lock.json" -nt "$stamp" ]; then
  echo "deps: npm ci in tests/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "deps: tests/node SDKs present"
fi

# The Bun runtimes the TLS locator is tested on (exactly as tests/bun/package-lock.json pins them).
bun_dir="$(cd "$(dirname "$0")" && pwd)/bun"
stamp="$bun_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$bun_dir/package-lock.json" -nt "$stamp" ]; then
  echo "deps: npm ci in tests/bun"
  (cd "$bun_dir" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "deps: tests/bun runtimes present"
fi
# Deno (rustls over aws-lc-rs), which the AEAD capture is tested on, as tests/deno/package-lock.json pins it.
deno_dir="$(cd "$(dirname "$0")" && pwd)/deno"
stamp="$deno_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$deno_dir/package-lock.json" -nt "$stamp" ]; then
  echo "deps: npm ci in tests/deno"
  (cd "$deno_dir" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "deps: tests/deno runtime present"
fi
