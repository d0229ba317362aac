build-asan/userspace/protocols/http2.o: userspace/protocols/http2.c \
 userspace/protocols/http2.h userspace/protocols/proto.h \
 userspace/protocols/http.h bpf/agtrace.h
userspace/protocols/http2.h:
userspace/protocols/proto.h:
userspace/protocols/http.h:
bpf/agtrace.h:
