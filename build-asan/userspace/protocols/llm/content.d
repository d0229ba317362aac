build-asan/userspace/protocols/llm/content.o: \
 userspace/protocols/llm/content.c userspace/protocols/llm/llm.h \
 userspace/protocols/http1.h userspace/protocols/http.h \
 userspace/base/jsonw.h
userspace/protocols/llm/llm.h:
userspace/protocols/http1.h:
userspace/protocols/http.h:
userspace/base/jsonw.h:
