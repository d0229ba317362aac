# agtrace build. `make deps` once (root, Debian), then `make`, `make test`, `make bench`.
ARCH ?= $(shell uname -m)
TRIPLE := $(shell gcc -dumpmachine)
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
OUT := build

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/skel/%.skel.h,$(BPF_SRCS))

# Userspace: every .c under userspace/; the library part is everything but main.c, so unit
# tests link the same code the binary runs.
LIB_SRCS := $(filter-out userspace/cli/main.c,$(shell find userspace -name '*.c' | sort))
LIB_OBJS := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
PKGS := libbpf libelf zlib libdeflate libcurl libcjson capstone libbrotlidec libcrypto libmicrohttpd msgpack libnghttp2 libpcre2-8
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-Iuserspace -Ibpf -I$(OUT)/skel -Itests/lib $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibpf -Ibpf/$(ARCH) \
	-I/usr/include/$(TRIPLE) -Wall -Werror

.PHONY: FORCE all install uninstall deps test unit integration bench bench-export clean format demo fuzz fuzz-smoke
.SECONDARY:
all: agtrace

deps:
	bash tests/deps.sh

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c bpf/agtrace.h bpf/arch.h bpf/common.bpf.h bpf/data.bpf.h | $(OUT)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

$(OUT)/skel/%.skel.h: $(OUT)/bpf/%.bpf.o | $(OUT)/skel
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# The Elasticsearch index template and ILM policy live in deploy/elasticsearch as JSON files;
# the binary embeds them as C strings (what --es-install-template puts is exactly those files).
ES_ASSETS := deploy/elasticsearch/index-template.json deploy/elasticsearch/ilm-policy.json
$(OUT)/skel/es_assets.h: $(ES_ASSETS) | $(OUT)/skel
	{ printf 'static const char template_json[] =\n'; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/    "/; s/$$/\\n"/' deploy/elasticsearch/index-template.json; \
	  printf ';\nstatic const char ilm_json[] =\n'; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/    "/; s/$$/\\n"/' deploy/elasticsearch/ilm-policy.json; \
	  printf ';\n'; } > $@

# The version: `git describe` of a release tag (v1.2.3) when there is one, else the VERSION file
# (a tarball or an image built without .git); the commit apart. Rewritten only when it changes.
AGT_VERSION := $(or $(patsubst v%,%,$(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)),$(shell cat VERSION))
AGT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
$(OUT)/skel/agt_version.h: FORCE | $(OUT)/skel
	@printf '#define AGT_VERSION "%s"\n#define AGT_REVISION "%s"\n' '$(AGT_VERSION)' '$(AGT_REVISION)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
FORCE:

$(OUT)/%.o: %.c | $(SKELS) $(OUT)/skel/es_assets.h $(OUT)/skel/agt_version.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

agtrace: $(OUT)/userspace/cli/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(OUT)/bpf $(OUT)/skel:
	mkdir -p $@

# Tests ----------------------------------------------------------------------------------
# The strict OTLP receiver's protobuf side: code protoc-c generates from the official
# opentelemetry-proto definitions (tests/servers/proto), and the tool otlp_server.py runs.
OTLP_PROTOS := opentelemetry/proto/collector/trace/v1/trace_service.proto \
	opentelemetry/proto/trace/v1/trace.proto opentelemetry/proto/common/v1/common.proto \
	opentelemetry/proto/resource/v1/resource.proto
OTLP_GEN := $(OUT)/tests/otlp-gen
OTLP_PB := $(OUT)/tests/otlp_pb

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TARGET_BINS := $(OUT)/tests/nested $(OUT)/tests/nested_cet $(OUT)/tests/bench_target $(OUT)/tests/gosum \
	$(OUT)/tests/gotls $(OUT)/tests/gotls-stripped $(OUT)/tests/goh2 \
	$(OUT)/tests/rtgo $(OUT)/tests/rtgo-stripped $(OUT)/tests/file_writer \
	$(OUT)/tests/curl_agent $(OUT)/tests/curl_agent_gnutls $(OUT)/tests/quick_call \
	$(OUT)/tests/ssl_loop $(OUT)/tests/gotls_loop $(OUT)/tests/tls_reuse \
	$(OUT)/tests/h2c_server

$(OUT)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS) -lcmocka -lbrotlienc

# Test targets: noinline, no sibling calls, so the probed functions really are calls.
$(OUT)/tests/%: tests/targets/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-optimize-sibling-calls -fno-inline -Wall -Werror $< -o $@

# The same, built as CET distributions (Ubuntu, Fedora) build: every function starts with endbr64.
$(OUT)/tests/nested_cet: tests/targets/nested.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-optimize-sibling-calls -fno-inline -fcf-protection=full -Wall -Werror $< -o $@

# A Go target (stdlib only, no module downloads) for return-instruction probes on Go code.
$(OUT)/tests/gosum: tests/targets/gosum/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

# A Go "agent" calling HTTPS through crypto/tls, built twice from the same code: with .symtab,
# and stripped (-s -w), where only .gopclntab names its functions.
$(OUT)/tests/gotls: tests/targets/gotls/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

$(OUT)/tests/gotls-stripped: tests/targets/gotls/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -ldflags='-s -w' -o $@ $<

# Go runtime metrics' target, with .symtab and stripped (-s -w: .gopclntab only).
$(OUT)/tests/rtgo: tests/targets/rtgo/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

$(OUT)/tests/rtgo-stripped: tests/targets/rtgo/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -ldflags='-s -w' -o $@ $<

# A libcurl agent with libcurl's defaults (h2 over TLS), against libcurl with OpenSSL and against
# libcurl-gnutls (same headers; Debian ships only the OpenSSL flavour's -dev link).
$(OUT)/tests/curl_agent: tests/targets/curl_agent.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lcurl
$(OUT)/tests/curl_agent_gnutls: tests/targets/curl_agent.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -l:libcurl-gnutls.so.4

# A cleartext HTTP/2 server (prior knowledge and Upgrade: h2c) on libnghttp2.
$(OUT)/tests/h2c_server: tests/servers/h2c_server.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lnghttp2

# An OpenSSL client that ends connections with close(2) alone and reuses its SSL object.
$(OUT)/tests/tls_reuse: tests/targets/tls_reuse.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lssl -lcrypto

# Benchmark targets: OpenSSL and Go crypto/tls calls in a loop, in memory (make bench).
$(OUT)/tests/ssl_loop: tests/targets/ssl_loop.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lssl -lcrypto
$(OUT)/tests/gotls_loop: tests/targets/gotls_loop/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

# A process whose LLM call comes right after its exec (libssl.so.3), for discovery.
$(OUT)/tests/quick_call: tests/targets/quick_call.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lssl -lcrypto

# An HTTPS server offering h2 and http/1.1 in OpenAI's wire format (llm_server.py speaks
# HTTP/1.1 only).
$(OUT)/tests/goh2: tests/servers/goh2/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

# The Helm chart's renderer for tests/integration/test_deploy.py: Go's text/template, as Helm's
# engine, with the few Sprig functions the chart uses (Helm is not packaged in Debian).
$(OUT)/tests/helm_render: tests/helm/render.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

# The Go function table test reads both builds of gotls.
$(OUT)/tests/test_gopclntab: $(OUT)/tests/gotls $(OUT)/tests/gotls-stripped

# The TLS locator's test programs: a static OpenSSL HTTPS client (with symbols, stripped, and
# with a second function raising errors as SSL_write, which the locator must refuse), and the
# Bun runtimes pinned by tests/bun/package-lock.json (`make deps` installs them).
LOCATE_BINS := $(OUT)/tests/tls_static $(OUT)/tests/tls_static_stripped $(OUT)/tests/tls_ambig \
	$(OUT)/tests/tls_ambig_stripped $(OUT)/tests/aead_sites $(OUT)/tests/aead_two \
	$(OUT)/tests/tls_padded $(OUT)/tests/tls_padded_stripped \
	$(OUT)/tests/tls_dynamic $(OUT)/tests/boring_sites $(OUT)/tests/boring_two $(OUT)/tests/nested
BUN_STAMP := tests/bun/node_modules/.package-lock.json
DENO_STAMP := tests/deno/node_modules/.package-lock.json
$(OUT)/tests/tls_static: tests/targets/tls_static.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror -static $< -o $@ -Wl,-w -lssl -lcrypto
$(OUT)/tests/tls_ambig: tests/targets/tls_static.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror -static -DTLS_AMBIGUOUS $< -o $@ -Wl,-w -lssl -lcrypto
$(OUT)/tests/tls_static_stripped: $(OUT)/tests/tls_static
	strip -o $@ $<
$(OUT)/tests/tls_ambig_stripped: $(OUT)/tests/tls_ambig
	strip -o $@ $<
# The same client grown to 300 MB, for the locator's time limit: 150 MB of pseudo-random bytes
# (AES-CTR of zeros: the same on every machine) as code and 150 MB as read-only data, linked in
# as sections of their own.
PAD_GEN = openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
	-iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null | head -c 150000000
$(OUT)/tests/tls_padded: tests/targets/tls_static.c
	@mkdir -p $(OUT)/tests/pad
	$(PAD_GEN) > $(OUT)/tests/pad/tx.bin
	$(PAD_GEN) | tr '\000-\377' '\200-\377\000-\177' > $(OUT)/tests/pad/ro.bin
	cd $(OUT)/tests/pad && ld -r -b binary tx.bin -o tx.o && ld -r -b binary ro.bin -o ro.o
	objcopy --rename-section .data=.text.agtpad,alloc,load,readonly,code,contents $(OUT)/tests/pad/tx.o
	objcopy --rename-section .data=.rodata.agtpad,alloc,load,readonly,data,contents $(OUT)/tests/pad/ro.o
	$(CC) -O2 -g -Wall -Werror -static $< $(OUT)/tests/pad/tx.o $(OUT)/tests/pad/ro.o -o $@ \
		-Wl,-w,-z,noexecstack -lssl -lcrypto
	rm -rf $(OUT)/tests/pad
$(OUT)/tests/tls_padded_stripped: $(OUT)/tests/tls_padded
	strip -o $@ $<
$(OUT)/tests/tls_dynamic: tests/targets/tls_static.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror $< -o $@ -lssl -lcrypto
$(OUT)/tests/aead_two: tests/targets/aead_sites.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-inline -Wall -Werror -DTWO_SEALS $< -o $@
$(OUT)/tests/boring_two: tests/targets/boring_sites.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-inline -Wall -Werror -DTWO_WRITERS $< -o $@
$(BUN_STAMP): tests/bun/package-lock.json
	cd tests/bun && npm ci --no-audit --no-fund --loglevel=error
$(DENO_STAMP): tests/deno/package-lock.json
	cd tests/deno && npm ci --no-audit --no-fund --loglevel=error
$(OUT)/tests/test_locate: $(LOCATE_BINS) $(BUN_STAMP) $(DENO_STAMP)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: agtrace $(TARGET_BINS) $(OUT)/tests/bulk_server $(OTLP_PB) $(OUT)/tests/helm_render \
		$(LOCATE_BINS) $(BUN_STAMP) $(DENO_STAMP)
	/usr/bin/python3 -m pytest -v tests/integration

# Fuzzing (clang libFuzzer + ASan/UBSan) over everything after the ring buffer. `make fuzz`
# runs it for FUZZ_SECONDS; `make test` replays the seed corpus and a short bounded run.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Werror -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Itests/lib \
	-Iuserspace -Ibpf -I$(OUT)/skel $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
$(OUT)/fuzz/fuzz_decode: tests/fuzz/fuzz_decode.c $(LIB_SRCS) | $(SKELS) $(OUT)/skel/es_assets.h $(OUT)/skel/agt_version.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@ $(LDLIBS)

$(OUT)/fuzz/seeds: tests/fuzz/make_seeds.py $(wildcard tests/fixtures/llm/*/*)
	/usr/bin/python3 $< $@
	@touch $@

# HTTP/2 alone, through its proto.h interface; seeds are real conversations built with nghttp2's
# HPACK encoder.
$(OUT)/fuzz/fuzz_http2: tests/fuzz/fuzz_http2.c userspace/protocols/http2.c userspace/protocols/http.c \
		userspace/protocols/http2.h userspace/protocols/proto.h userspace/protocols/http.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@ $(LDLIBS)

$(OUT)/fuzz/make_h2_seeds: tests/fuzz/make_h2_seeds.c tests/fuzz/h2_wire.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

$(OUT)/fuzz/h2seeds: $(OUT)/fuzz/make_h2_seeds
	$< $@
	@touch $@

fuzz-smoke: $(OUT)/fuzz/fuzz_decode $(OUT)/fuzz/seeds $(OUT)/fuzz/fuzz_http2 $(OUT)/fuzz/h2seeds
	$(OUT)/fuzz/fuzz_decode -runs=20000 -seed=1 -max_len=8192 $(OUT)/fuzz/seeds \
		>$(OUT)/fuzz/decode.log 2>&1 || { tail -30 $(OUT)/fuzz/decode.log; exit 1; }
	@tail -3 $(OUT)/fuzz/decode.log
	$(OUT)/fuzz/fuzz_http2 -runs=20000 -seed=1 -max_len=8192 $(OUT)/fuzz/h2seeds \
		>$(OUT)/fuzz/http2.log 2>&1 || { tail -30 $(OUT)/fuzz/http2.log; exit 1; }
	@tail -3 $(OUT)/fuzz/http2.log

# Both targets, FUZZ_SECONDS each, each with a corpus of its own that grows from run to run.
fuzz: $(OUT)/fuzz/fuzz_decode $(OUT)/fuzz/seeds $(OUT)/fuzz/fuzz_http2 $(OUT)/fuzz/h2seeds
	mkdir -p $(OUT)/fuzz/corpus $(OUT)/fuzz/h2corpus
	$(OUT)/fuzz/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(OUT)/fuzz/corpus $(OUT)/fuzz/seeds
	$(OUT)/fuzz/fuzz_http2 -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(OUT)/fuzz/h2corpus $(OUT)/fuzz/h2seeds

test: unit fuzz-smoke integration

$(OUT)/bench/bench_pipeline: tests/bench/bench_pipeline.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

$(OUT)/bench/bench_es: tests/bench/bench_es.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

# The fast, strict Elasticsearch _bulk / OTLP stand-in the exporter benchmark sends to (the
# Python servers are slower than the exporter). `build/tests/bulk_server --self-bench` prints
# its own ceiling.
BULK_SERVER := $(OUT)/tests/bulk_server
$(BULK_SERVER): tests/servers/bulk_server.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(shell pkg-config --libs libmicrohttpd zlib) -lpthread

# (OTLP_PB, the strict OTLP receiver's protobuf tool, is defined with the test variables.)
$(OTLP_GEN)/.stamp: $(addprefix tests/servers/proto/,$(OTLP_PROTOS))
	@mkdir -p $(OTLP_GEN)
	protoc-c -Itests/servers/proto --c_out=$(OTLP_GEN) $(OTLP_PROTOS)
	@touch $@
$(OTLP_PB): tests/servers/otlp_pb.c $(OTLP_GEN)/.stamp
	$(CC) -O2 -g -Wall -Werror -I$(OTLP_GEN) $< $(addprefix $(OTLP_GEN)/,$(OTLP_PROTOS:.proto=.pb-c.c)) \
		-o $@ $(shell pkg-config --cflags --libs libprotobuf-c)

bench: agtrace $(TARGET_BINS) $(OUT)/bench/bench_pipeline $(OUT)/bench/bench_es $(BULK_SERVER) \
		$(OTLP_PB)
	nice -n -10 /usr/bin/python3 tests/bench/bench_uprobe.py

# Section 5 of the bench alone: the exporters end to end into the Python and C test servers.
bench-export: $(OUT)/bench/bench_es $(BULK_SERVER)
	/usr/bin/python3 tests/bench/bench_uprobe.py exporters

# Installation: the binary, the shipped probe specs (found by the binary at
# PREFIX/share/agtrace/probes), the man page and bash completion. DESTDIR for packaging.
PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
install: agtrace
	install -D -m 0755 agtrace $(DESTDIR)$(BINDIR)/agtrace
	install -d $(DESTDIR)$(DATADIR)/agtrace/probes
	install -m 0644 probes/*.json $(DESTDIR)$(DATADIR)/agtrace/probes/
	install -D -m 0644 doc/agtrace.1 $(DESTDIR)$(MANDIR)/man1/agtrace.1
	install -D -m 0644 doc/agtrace.bash-completion $(DESTDIR)$(BASHCOMPDIR)/agtrace

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/agtrace $(DESTDIR)$(MANDIR)/man1/agtrace.1 \
		$(DESTDIR)$(BASHCOMPDIR)/agtrace
	rm -rf $(DESTDIR)$(DATADIR)/agtrace

demo: agtrace $(TARGET_BINS)
	bash tests/demo.sh

format:
	clang-format -i $$(find userspace tests bpf -name '*.[ch]' ! -name vmlinux.h)

clean:
	rm -rf $(OUT) agtrace

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
