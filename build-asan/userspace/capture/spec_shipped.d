build-asan/userspace/capture/spec_shipped.o: \
 userspace/capture/spec_shipped.c userspace/capture/spec.h bpf/agtrace.h \
 userspace/capture/handlers.h
userspace/capture/spec.h:
bpf/agtrace.h:
userspace/capture/handlers.h:
