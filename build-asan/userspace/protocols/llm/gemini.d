build-asan/userspace/protocols/llm/gemini.o: \
 userspace/protocols/llm/gemini.c userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
