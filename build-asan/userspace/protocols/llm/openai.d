build-asan/userspace/protocols/llm/openai.o: \
 userspace/protocols/llm/openai.c userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
