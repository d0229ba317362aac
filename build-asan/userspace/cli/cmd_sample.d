build-asan/userspace/cli/cmd_sample.o: userspace/cli/cmd_sample.c \
 userspace/base/log.h userspace/base/util.h userspace/capture/sampling.h \
 bpf/agtrace.h userspace/capture/units.h userspace/cli/cli.h
userspace/base/log.h:
userspace/base/util.h:
userspace/capture/sampling.h:
bpf/agtrace.h:
userspace/capture/units.h:
userspace/cli/cli.h:
