build-asan/userspace/export/jsonl.o: userspace/export/jsonl.c \
 userspace/base/jsonw.h userspace/base/util.h userspace/export/schema.h \
 userspace/export/pb.h userspace/record/span.h bpf/agtrace.h \
 userspace/record/proc.h userspace/record/identity.h \
 userspace/export/sink.h
userspace/base/jsonw.h:
userspace/base/util.h:
userspace/export/schema.h:
userspace/export/pb.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/export/sink.h:
