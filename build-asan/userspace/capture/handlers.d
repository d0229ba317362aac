build-asan/userspace/capture/handlers.o: userspace/capture/handlers.c \
 userspace/capture/handlers.h bpf/agtrace.h
userspace/capture/handlers.h:
bpf/agtrace.h:
