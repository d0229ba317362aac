build-asan/userspace/base/util.o: userspace/base/util.c \
 userspace/base/util.h
userspace/base/util.h:
