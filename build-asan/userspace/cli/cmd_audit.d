build-asan/userspace/cli/cmd_audit.o: userspace/cli/cmd_audit.c \
 userspace/base/log.h userspace/export/audit.h userspace/export/sink.h \
 userspace/record/span.h bpf/agtrace.h userspace/record/proc.h \
 userspace/record/identity.h
userspace/base/log.h:
userspace/export/audit.h:
userspace/export/sink.h:
userspace/record/span.h:
bpf/agtrace.h:
userspace/record/proc.h:
userspace/record/identity.h:
