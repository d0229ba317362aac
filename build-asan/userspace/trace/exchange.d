build-asan/userspace/trace/exchange.o: userspace/trace/exchange.c \
 userspace/trace/trace.h userspace/protocols/http.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h userspace/record/stage.h \
 userspace/trace/emit.h userspace/base/util.h userspace/protocols/mcp.h \
 userspace/protocols/llm/llm.h userspace/protocols/http1.h \
 userspace/trace/agent.h userspace/trace/nest.h
userspace/trace/trace.h:
userspace/protocols/http.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/record/stage.h:
userspace/trace/emit.h:
userspace/base/util.h:
userspace/protocols/mcp.h:
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/trace/agent.h:
userspace/trace/nest.h:
