build-asan/userspace/export/otlp.o: userspace/export/otlp.c \
 userspace/base/log.h userspace/base/util.h userspace/base/version.h \
 userspace/export/exporters.h userspace/export/delivery.h \
 userspace/base/jsonw.h userspace/export/sink.h userspace/record/span.h \
 bpf/agtrace.h userspace/record/proc.h userspace/record/identity.h \
 userspace/export/http.h userspace/export/pb.h userspace/export/schema.h
userspace/base/log.h:
userspace/base/util.h:
userspace/base/version.h:
userspace/export/exporters.h:
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/export/http.h:
userspace/export/pb.h:
userspace/export/schema.h:
