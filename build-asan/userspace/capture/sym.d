build-asan/userspace/capture/sym.o: userspace/capture/sym.c \
 userspace/capture/sym.h
userspace/capture/sym.h:
