build-asan/userspace/cli/options.o: userspace/cli/options.c \
 userspace/cli/options.h userspace/tracer/config.h bpf/agtrace.h \
 userspace/capture/container.h userspace/record/identity.h \
 userspace/export/exporters.h userspace/export/delivery.h \
 userspace/base/jsonw.h userspace/export/sink.h userspace/record/span.h \
 userspace/record/proc.h userspace/base/log.h userspace/base/redact.h \
 userspace/base/util.h userspace/capture/sampling.h \
 userspace/export/metrics.h
userspace/cli/options.h:
userspace/tracer/config.h:
bpf/agtrace.h:
userspace/capture/container.h:
userspace/record/identity.h:
userspace/export/exporters.h:
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/record/span.h:
userspace/record/proc.h:
userspace/base/log.h:
userspace/base/redact.h:
userspace/base/util.h:
userspace/capture/sampling.h:
userspace/export/metrics.h:
