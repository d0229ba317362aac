build-asan/userspace/cli/cmd_check.o: userspace/cli/cmd_check.c \
 userspace/base/log.h userspace/capture/preflight.h userspace/cli/cli.h
userspace/base/log.h:
userspace/capture/preflight.h:
userspace/cli/cli.h:
