build-asan/userspace/pipeline/pipeline.o: userspace/pipeline/pipeline.c \
 userspace/pipeline/pipeline.h userspace/events/decode.h \
 userspace/capture/spec.h bpf/agtrace.h userspace/capture/handlers.h \
 userspace/record/stage.h userspace/record/proc.h \
 userspace/record/identity.h userspace/streams/conn.h \
 userspace/protocols/http.h userspace/trace/trace.h \
 userspace/record/span.h userspace/trace/emit.h userspace/base/util.h
userspace/pipeline/pipeline.h:
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
