build-asan/userspace/base/utf8.o: userspace/base/utf8.c \
 userspace/base/utf8.h
userspace/base/utf8.h:
