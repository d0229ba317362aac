build-asan/userspace/cli/cmd_probes.o: userspace/cli/cmd_probes.c \
 userspace/base/log.h userspace/capture/spec.h bpf/agtrace.h \
 userspace/capture/handlers.h
userspace/base/log.h:
userspace/capture/spec.h:
bpf/agtrace.h:
userspace/capture/handlers.h:
