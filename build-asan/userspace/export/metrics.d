build-asan/userspace/export/metrics.o: userspace/export/metrics.c \
 userspace/export/metrics.h userspace/export/sink.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h userspace/base/log.h userspace/base/util.h
userspace/export/metrics.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/base/log.h:
userspace/base/util.h:
