#!/usr/bin/env bash
# The demo: start a program, attach agtrace to it by PID while it runs, make it work, and
# print the tree agtrace saw. Nothing in the program knows it is traced.
set -euo pipefail
cd "$(dirname "$0")/.."
AGTRACE=./agtrace
TARGET=./build/tests/nested

coproc DEMO { exec "$TARGET"; }
read -r ready pid <&"${DEMO[0]}"
echo "demo: started $TARGET as PID $pid (it waits for commands on stdin)"
echo "demo: agtrace attach -p $pid --probes tests/fixtures/nested.json -o tree"
echo
"$AGTRACE" attach -p "$pid" --probes tests/fixtures/nested.json -o tree 2>/tmp/agtrace-demo.err &
tracer=$!
for _ in $(seq 100); do grep -q "attached " /tmp/agtrace-demo.err 2>/dev/null && break; sleep 0.1; done
for cmd in "outer 3" "jump" "recurse 3" "thread 5"; do
  echo "$cmd" >&"${DEMO[1]}"
  read -r _reply <&"${DEMO[0]}"
done
echo "exit 0" >&"${DEMO[1]}"
wait "$tracer"
echo
sed 's/^/stderr: /' /tmp/agtrace-demo.err
