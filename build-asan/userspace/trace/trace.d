build-asan/userspace/trace/trace.o: userspace/trace/trace.c \
 userspace/trace/trace.h userspace/protocols/http.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h userspace/record/stage.h \
 userspace/trace/emit.h userspace/base/util.h userspace/trace/agent.h \
 userspace/protocols/llm/llm.h userspace/protocols/http1.h \
 userspace/trace/nest.h
userspace/trace/trace.h:
userspace/protocols/http.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/record/stage.h:
userspace/trace/emit.h:
userspace/base/util.h:
userspace/trace/agent.h:
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/trace/nest.h:
