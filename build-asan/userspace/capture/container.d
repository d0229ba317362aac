build-asan/userspace/capture/container.o: userspace/capture/container.c \
 userspace/capture/container.h userspace/record/identity.h \
 userspace/base/log.h userspace/base/util.h
userspace/capture/container.h:
userspace/record/identity.h:
userspace/base/log.h:
userspace/base/util.h:
