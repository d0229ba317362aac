build-asan/userspace/capture/select.o: userspace/capture/select.c \
 userspace/capture/select.h userspace/capture/container.h \
 userspace/record/identity.h userspace/base/log.h \
 userspace/capture/target.h userspace/record/proc.h userspace/base/util.h
userspace/capture/select.h:
userspace/capture/container.h:
userspace/record/identity.h:
userspace/base/log.h:
userspace/capture/target.h:
userspace/record/proc.h:
userspace/base/util.h:
