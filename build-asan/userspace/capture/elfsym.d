build-asan/userspace/capture/elfsym.o: userspace/capture/elfsym.c \
 userspace/capture/elfsym.h userspace/capture/sym.h userspace/base/log.h \
 userspace/capture/gopclntab.h
userspace/capture/elfsym.h:
userspace/capture/sym.h:
userspace/base/log.h:
userspace/capture/gopclntab.h:
