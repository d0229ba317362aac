build-asan/userspace/capture/target.o: userspace/capture/target.c \
 userspace/capture/target.h userspace/capture/container.h \
 userspace/record/identity.h userspace/record/proc.h userspace/base/log.h \
 userspace/base/util.h
userspace/capture/target.h:
userspace/capture/container.h:
userspace/record/identity.h:
userspace/record/proc.h:
userspace/base/log.h:
userspace/base/util.h:
