build-asan/userspace/capture/units.o: userspace/capture/units.c \
 userspace/capture/units.h userspace/base/log.h userspace/base/util.h \
 build-asan/skel/func.skel.h build-asan/skel/proc.skel.h \
 build-asan/skel/sock.skel.h build-asan/skel/tls.skel.h
userspace/capture/units.h:
userspace/base/log.h:
userspace/base/util.h:
build-asan/skel/func.skel.h:
build-asan/skel/proc.skel.h:
build-asan/skel/sock.skel.h:
build-asan/skel/tls.skel.h:
