build-asan/userspace/streams/conn.o: userspace/streams/conn.c \
 userspace/streams/conn.h bpf/agtrace.h userspace/protocols/http.h \
 userspace/record/proc.h userspace/record/identity.h \
 userspace/record/stage.h userspace/protocols/proto.h
userspace/streams/conn.h:
bpf/agtrace.h:
userspace/protocols/http.h:
userspace/record/proc.h:
userspace/record/identity.h:
userspace/record/stage.h:
userspace/protocols/proto.h:
