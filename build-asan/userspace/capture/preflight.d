build-asan/userspace/capture/preflight.o: userspace/capture/preflight.c \
 userspace/capture/preflight.h userspace/base/log.h userspace/base/util.h
userspace/capture/preflight.h:
userspace/base/log.h:
userspace/base/util.h:
