build-asan/userspace/protocols/http.o: userspace/protocols/http.c \
 userspace/protocols/http.h
userspace/protocols/http.h:
