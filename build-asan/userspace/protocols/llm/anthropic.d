build-asan/userspace/protocols/llm/anthropic.o: \
 userspace/protocols/llm/anthropic.c userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
