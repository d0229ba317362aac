#!/bin/sh
# Integration-test target: a shell "agent" that runs one curl per LLM call, each in a process of
# its own (a command substitution's subshell, which runs curl), with curl's defaults (h2 over
# TLS when the server offers it). The CA comes from SSL_CERT_FILE. Prints "ready PID", then one
# line per stdin command:
#   call URL BODY   POST BODY to URL -> "status CODE HTTP_VERSION"
#   gocall URL BODY the same through $GOTLS -call (a Go program of crypto/tls, whose call comes
#                   right after its exec) -> "status CODE PROTO BYTES"
#   agent WORDS...  WORDS as one command to a fresh $AGENT (a command line: an agent that prints
#                   "ready PID" and answers a line per command, tests/targets/fetch_agent.js under
#                   Bun or a `bun build --compile` executable) -> its answer
#   quit            exit
echo "ready $$"
while read -r cmd url body; do
	case "$cmd" in
	quit) exit 0 ;;
	call)
		out=$(curl -s --cacert "$SSL_CERT_FILE" -o /dev/null -w '%{http_code} %{http_version}' \
			-H 'Content-Type: application/json' -d "$body" "$url")
		echo "status $out"
		;;
	gocall)
		out=$("$GOTLS" -call "$url" -body "$body")
		echo "$out"
		;;
	agent)
		out=$(printf '%s %s\nquit\n' "$url" "$body" | $AGENT | {
			read -r _ready
			read -r line
			echo "$line"
		})
		echo "$out"
		;;
	*) echo unknown ;;
	esac
done
