build-asan/userspace/capture/spec.o: userspace/capture/spec.c \
 userspace/capture/spec.h bpf/agtrace.h userspace/capture/handlers.h \
 userspace/base/log.h userspace/base/util.h
userspace/capture/spec.h:
bpf/agtrace.h:
userspace/capture/handlers.h:
userspace/base/log.h:
userspace/base/util.h:
