build-asan/userspace/export/es.o: userspace/export/es.c \
 userspace/base/log.h userspace/export/exporters.h \
 userspace/export/delivery.h userspace/base/jsonw.h \
 userspace/export/sink.h userspace/record/span.h bpf/agtrace.h \
 userspace/record/proc.h userspace/record/identity.h \
 userspace/export/http.h userspace/export/schema.h userspace/export/pb.h \
 build-asan/skel/es_assets.h
userspace/base/log.h:
userspace/export/exporters.h:
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/export/http.h:
userspace/export/schema.h:
userspace/export/pb.h:
build-asan/skel/es_assets.h:
