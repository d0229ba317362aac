build-asan/userspace/capture/locate_elf.o: userspace/capture/locate_elf.c \
 userspace/capture/locate_int.h userspace/base/log.h
userspace/capture/locate_int.h:
userspace/base/log.h:
