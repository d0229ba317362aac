build-asan/userspace/capture/reaper.o: userspace/capture/reaper.c \
 userspace/capture/reaper.h
userspace/capture/reaper.h:
