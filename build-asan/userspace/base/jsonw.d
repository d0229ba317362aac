build-asan/userspace/base/jsonw.o: userspace/base/jsonw.c \
 userspace/base/jsonw.h
userspace/base/jsonw.h:
