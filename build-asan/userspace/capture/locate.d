build-asan/userspace/capture/locate.o: userspace/capture/locate.c \
 userspace/capture/locate.h userspace/capture/locate_int.h \
 userspace/base/log.h
userspace/capture/locate.h:
userspace/capture/locate_int.h:
userspace/base/log.h:
