build-asan/userspace/protocols/mcp.o: userspace/protocols/mcp.c \
 userspace/protocols/mcp.h userspace/protocols/http.h
userspace/protocols/mcp.h:
userspace/protocols/http.h:
