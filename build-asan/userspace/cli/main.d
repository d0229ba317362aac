build-asan/userspace/cli/main.o: userspace/cli/main.c \
 userspace/base/log.h userspace/cli/cli.h
userspace/base/log.h:
userspace/cli/cli.h:
