build-asan/userspace/events/decode.o: userspace/events/decode.c \
 userspace/events/decode.h userspace/capture/spec.h bpf/agtrace.h \
 userspace/capture/handlers.h userspace/record/stage.h \
 userspace/record/proc.h userspace/record/identity.h \
 userspace/streams/conn.h userspace/protocols/http.h \
 userspace/trace/trace.h userspace/record/span.h userspace/trace/emit.h \
 userspace/base/util.h userspace/trace/agent.h \
 userspace/protocols/llm/llm.h userspace/protocols/http1.h \
 userspace/trace/nest.h
userspace/events/decode.h:
userspace/capture/spec.h:
bpf/agtrace.h:
userspace/capture/handlers.h:
userspace/record/stage.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/streams/conn.h:
userspace/protocols/http.h:
userspace/trace/trace.h:
userspace/record/span.h:
userspace/trace/emit.h:
userspace/base/util.h:
userspace/trace/agent.h:
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/trace/nest.h:
