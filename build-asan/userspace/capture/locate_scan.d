build-asan/userspace/capture/locate_scan.o: \
 userspace/capture/locate_scan.c userspace/capture/locate_int.h \
 userspace/base/log.h
userspace/capture/locate_int.h:
userspace/base/log.h:
