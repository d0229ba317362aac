build-asan/userspace/export/sink.o: userspace/export/sink.c \
 userspace/export/sink.h userspace/record/span.h bpf/agtrace.h \
 userspace/record/proc.h userspace/record/identity.h
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
