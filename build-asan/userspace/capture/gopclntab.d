build-asan/userspace/capture/gopclntab.o: userspace/capture/gopclntab.c \
 userspace/capture/gopclntab.h userspace/capture/sym.h \
 userspace/base/log.h
userspace/capture/gopclntab.h:
userspace/capture/sym.h:
userspace/base/log.h:
