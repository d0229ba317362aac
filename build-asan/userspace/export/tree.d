build-asan/userspace/export/tree.o: userspace/export/tree.c \
 userspace/base/util.h userspace/export/sink.h userspace/record/span.h \
 bpf/agtrace.h userspace/record/proc.h userspace/record/identity.h
userspace/base/util.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
