build-asan/userspace/export/pb.o: userspace/export/pb.c \
 userspace/export/pb.h userspace/base/utf8.h
userspace/export/pb.h:
userspace/base/utf8.h:
