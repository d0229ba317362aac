build-asan/userspace/trace/emit.o: userspace/trace/emit.c \
 userspace/trace/emit.h userspace/base/util.h userspace/record/span.h \
 bpf/agtrace.h userspace/record/proc.h userspace/record/identity.h
userspace/trace/emit.h:
userspace/base/util.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
