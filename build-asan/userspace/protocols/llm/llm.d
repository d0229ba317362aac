build-asan/userspace/protocols/llm/llm.o: userspace/protocols/llm/llm.c \
 userspace/protocols/llm/llm.h userspace/protocols/http1.h \
 userspace/protocols/http.h userspace/base/util.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
userspace/base/util.h:
