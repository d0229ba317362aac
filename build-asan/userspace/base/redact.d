build-asan/userspace/base/redact.o: userspace/base/redact.c \
 userspace/base/redact.h userspace/base/redact_int.h
userspace/base/redact.h:
userspace/base/redact_int.h:
