build-asan/userspace/trace/agent.o: userspace/trace/agent.c \
 userspace/trace/agent.h userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h \
 userspace/trace/trace.h userspace/record/span.h bpf/agtrace.h \
 userspace/record/proc.h userspace/record/identity.h \
 userspace/record/stage.h userspace/trace/emit.h userspace/base/util.h
userspace/trace/agent.h:
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
userspace/trace/trace.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/record/stage.h:
userspace/trace/emit.h:
userspace/base/util.h:
