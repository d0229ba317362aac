build-asan/userspace/capture/sampling.o: userspace/capture/sampling.c \
 userspace/capture/sampling.h bpf/agtrace.h userspace/base/log.h \
 userspace/base/util.h
userspace/capture/sampling.h:
bpf/agtrace.h:
userspace/base/log.h:
userspace/base/util.h:
