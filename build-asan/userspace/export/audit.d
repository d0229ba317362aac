build-asan/userspace/export/audit.o: userspace/export/audit.c \
 userspace/export/audit.h userspace/export/sink.h userspace/record/span.h \
 bpf/agtrace.h userspace/record/proc.h userspace/record/identity.h \
 userspace/base/log.h userspace/base/util.h userspace/export/schema.h \
 userspace/base/jsonw.h userspace/export/pb.h
userspace/export/audit.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/base/log.h:
userspace/base/util.h:
userspace/export/schema.h:
userspace/base/jsonw.h:
userspace/export/pb.h:
