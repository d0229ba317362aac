build-asan/userspace/cli/cmd_attach.o: userspace/cli/cmd_attach.c \
 userspace/cli/cli.h userspace/cli/options.h userspace/tracer/config.h \
 bpf/agtrace.h userspace/capture/container.h userspace/record/identity.h \
 userspace/export/exporters.h userspace/export/delivery.h \
 userspace/base/jsonw.h userspace/export/sink.h userspace/record/span.h \
 userspace/record/proc.h userspace/base/log.h
userspace/cli/cli.h:
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
