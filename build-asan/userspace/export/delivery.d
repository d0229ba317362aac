build-asan/userspace/export/delivery.o: userspace/export/delivery.c \
 userspace/export/delivery.h userspace/base/jsonw.h \
 userspace/export/sink.h userspace/record/span.h bpf/agtrace.h \
 userspace/record/proc.h userspace/record/identity.h userspace/base/log.h \
 userspace/base/util.h
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/base/log.h:
userspace/base/util.h:
