build-asan/userspace/export/schema.o: userspace/export/schema.c \
 userspace/export/schema.h userspace/base/jsonw.h userspace/export/pb.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h userspace/base/util.h \
 userspace/base/version.h
userspace/export/schema.h:
userspace/base/jsonw.h:
userspace/export/pb.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/base/util.h:
userspace/base/version.h:
