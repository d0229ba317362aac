build-asan/userspace/export/http.o: userspace/export/http.c \
 userspace/export/http.h userspace/base/log.h userspace/base/util.h \
 userspace/base/version.h
userspace/export/http.h:
userspace/base/log.h:
userspace/base/util.h:
userspace/base/version.h:
