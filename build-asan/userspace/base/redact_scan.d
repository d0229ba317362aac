build-asan/userspace/base/redact_scan.o: userspace/base/redact_scan.c \
 userspace/base/redact_int.h
userspace/base/redact_int.h:
