build-asan/userspace/protocols/llm/ollama.o: \
 userspace/protocols/llm/ollama.c userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
