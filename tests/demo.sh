#!/usr/bin/env bash
# The demo: an agent is already running; agtrace attaches to it by PID, with no probe spec
# and nothing changed in the agent, and prints the tree of what it did: its LLM calls
# (captured in TLS), the model's tool decisions, and then, with a probe spec, the nested
# function calls of a C program.
set -euo pipefail
cd "$(dirname "$0")/.."
AGTRACE=./agtrace
tmp=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT

# A local HTTPS server that speaks the OpenAI API (a throwaway certificate, made now).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1
/usr/bin/python3 tests/servers/llm_server.py "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/server" &
server=$!
for _ in $(seq 50); do [ -s "$tmp/server" ] && break; sleep 0.1; done
port=$(awk '{print $2}' "$tmp/server")

wait_attached() {
  for _ in $(seq 100); do grep -q "attached " "$1" 2>/dev/null && return; sleep 0.1; done
  cat "$1" >&2; exit 1
}

echo "== 1. an agent: LLM calls and tool decisions, captured at the TLS boundary"
coproc AGENT { exec /usr/bin/python3 tests/targets/demo_agent.py "https://localhost:$port" "$tmp/cert.pem"; }
read -r _ pid <&"${AGENT[0]}"
echo "\$ agtrace attach -p $pid        # the agent is PID $pid, already running"
"$AGTRACE" attach -p "$pid" -o tree 2>"$tmp/err1" &
tracer=$!
wait_attached "$tmp/err1"
echo go >&"${AGENT[1]}"
read -r answer <&"${AGENT[0]}"
wait "$tracer"
echo "(the agent printed: $answer)"
sed 's/^/  stderr: /' "$tmp/err1"

echo
echo "== 2. a C program: nested function calls through a probe spec"
coproc DEMO { exec ./build/tests/nested; }
read -r _ pid <&"${DEMO[0]}"
echo "\$ agtrace attach -p $pid --probes tests/fixtures/nested.json"
"$AGTRACE" attach -p "$pid" --probes tests/fixtures/nested.json -o tree 2>"$tmp/err2" &
tracer=$!
wait_attached "$tmp/err2"
for cmd in "outer 3" "jump" "recurse 2"; do
  echo "$cmd" >&"${DEMO[1]}"
  read -r _reply <&"${DEMO[0]}"
done
echo "exit 0" >&"${DEMO[1]}"
wait "$tracer"
sed 's/^/  stderr: /' "$tmp/err2"
