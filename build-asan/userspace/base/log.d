build-asan/userspace/base/log.o: userspace/base/log.c \
 userspace/base/log.h
userspace/base/log.h:
