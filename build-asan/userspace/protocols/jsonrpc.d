build-asan/userspace/protocols/jsonrpc.o: userspace/protocols/jsonrpc.c \
 userspace/protocols/jsonrpc.h bpf/agtrace.h userspace/protocols/mcp.h \
 userspace/protocols/proto.h userspace/protocols/http.h
userspace/protocols/jsonrpc.h:
bpf/agtrace.h:
userspace/protocols/mcp.h:
userspace/protocols/proto.h:
userspace/protocols/http.h:
