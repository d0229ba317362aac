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
LIB_SRCS := $(filter-out userspace/main.c,$(shell find userspace -name '*.c' | sort))
LIB_OBJS := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
PKGS := libbpf libelf zlib libcurl libcjson capstone libbrotlidec libcrypto libmicrohttpd msgpack \
	libpcre2-8
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-Iuserspace -Ibpf -I$(OUT)/skel $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibpf -Ibpf/$(ARCH) \
	-I/usr/include/$(TRIPLE) -Wall -Werror

.PHONY: all deps test unit integration bench clean format demo fuzz fuzz-smoke
.SECONDARY:
all: agtrace

deps:
	bash tests/deps.sh

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c bpf/agtrace.h bpf/common.bpf.h bpf/data.bpf.h | $(OUT)/bpf
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

$(OUT)/%.o: %.c | $(SKELS) $(OUT)/skel/es_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

agtrace: $(OUT)/userspace/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(OUT)/bpf $(OUT)/skel:
	mkdir -p $@

# Tests ----------------------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TARGET_BINS := $(OUT)/tests/nested $(OUT)/tests/bench_target $(OUT)/tests/gosum

$(OUT)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS) -lcmocka -lbrotlienc

# Test targets: noinline, no sibling calls, so the probed functions really are calls.
$(OUT)/tests/%: tests/targets/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-optimize-sibling-calls -fno-inline -Wall -Werror $< -o $@

# A Go target (stdlib only, no module downloads) for return-instruction probes on Go code.
$(OUT)/tests/gosum: tests/targets/gosum/main.go
	@mkdir -p $(dir $@)
	GOCACHE=$(abspath $(OUT))/gocache GO111MODULE=off GOFLAGS= go build -o $@ $<

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: agtrace $(TARGET_BINS)
	/usr/bin/python3 -m pytest -v tests/integration

# Fuzzing (clang libFuzzer + ASan/UBSan) over everything after the ring buffer. `make fuzz`
# runs it for FUZZ_SECONDS; `make test` replays the seed corpus and a short bounded run.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iuserspace -Ibpf -I$(OUT)/skel $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
$(OUT)/fuzz/fuzz_decode: tests/fuzz/fuzz_decode.c $(LIB_SRCS) | $(SKELS) $(OUT)/skel/es_assets.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@ $(LDLIBS)

$(OUT)/fuzz/seeds: tests/fuzz/make_seeds.py
	/usr/bin/python3 $< $@
	@touch $@

fuzz-smoke: $(OUT)/fuzz/fuzz_decode $(OUT)/fuzz/seeds
	$(OUT)/fuzz/fuzz_decode -runs=20000 -seed=1 -max_len=8192 $(OUT)/fuzz/seeds 2>&1 | tail -3

fuzz: $(OUT)/fuzz/fuzz_decode $(OUT)/fuzz/seeds
	mkdir -p $(OUT)/fuzz/corpus
	$(OUT)/fuzz/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(OUT)/fuzz/corpus $(OUT)/fuzz/seeds

test: unit fuzz-smoke integration

$(OUT)/bench/bench_pipeline: tests/bench/bench_pipeline.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

$(OUT)/bench/bench_es: tests/bench/bench_es.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

bench: agtrace $(TARGET_BINS) $(OUT)/bench/bench_pipeline $(OUT)/bench/bench_es
	/usr/bin/python3 tests/bench/bench_uprobe.py

demo: agtrace $(TARGET_BINS)
	bash tests/demo.sh

format:
	clang-format -i $$(find userspace tests bpf -name '*.[ch]' ! -name vmlinux.h)

clean:
	rm -rf $(OUT) agtrace

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
