build-asan/userspace/protocols/registry.o: userspace/protocols/registry.c \
 userspace/protocols/http1.h userspace/protocols/http.h \
 userspace/protocols/http2.h userspace/protocols/proto.h \
 userspace/protocols/jsonrpc.h bpf/agtrace.h userspace/protocols/mcp.h
userspace/protocols/http1.h:
userspace/protocols/http.h:
userspace/protocols/http2.h:
userspace/protocols/proto.h:
userspace/protocols/jsonrpc.h:
bpf/agtrace.h:
userspace/protocols/mcp.h:
