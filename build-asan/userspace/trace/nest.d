build-asan/userspace/trace/nest.o: userspace/trace/nest.c \
 userspace/trace/nest.h userspace/trace/emit.h userspace/base/util.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h
userspace/trace/nest.h:
userspace/trace/emit.h:
userspace/base/util.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
