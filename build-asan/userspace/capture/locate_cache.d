build-asan/userspace/capture/locate_cache.o: \
 userspace/capture/locate_cache.c userspace/capture/locate.h \
 userspace/capture/locate_int.h userspace/base/log.h \
 userspace/base/util.h
userspace/capture/locate.h:
userspace/capture/locate_int.h:
userspace/base/log.h:
userspace/base/util.h:
