build-asan/userspace/protocols/http1.o: userspace/protocols/http1.c \
 userspace/protocols/http1.h userspace/protocols/http.h bpf/agtrace.h \
 userspace/protocols/proto.h
userspace/protocols/http1.h:
userspace/protocols/http.h:
bpf/agtrace.h:
userspace/protocols/proto.h:
