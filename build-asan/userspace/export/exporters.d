build-asan/userspace/export/exporters.o: userspace/export/exporters.c \
 userspace/export/exporters.h userspace/export/delivery.h \
 userspace/base/jsonw.h userspace/export/sink.h userspace/record/span.h \
 bpf/agtrace.h userspace/record/proc.h userspace/record/identity.h \
 userspace/base/log.h
userspace/export/exporters.h:
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/base/log.h:
