build-asan/userspace/tracer/probes.o: userspace/tracer/probes.c \
 userspace/tracer/run.h userspace/capture/container.h \
 userspace/record/identity.h userspace/capture/target.h \
 userspace/record/proc.h userspace/capture/units.h \
 userspace/pipeline/pipeline.h userspace/events/decode.h \
 userspace/capture/spec.h bpf/agtrace.h userspace/capture/handlers.h \
 userspace/record/stage.h userspace/streams/conn.h \
 userspace/protocols/http.h userspace/trace/trace.h \
 userspace/record/span.h userspace/trace/emit.h userspace/base/util.h \
 userspace/capture/sampling.h userspace/capture/select.h \
 userspace/export/exporters.h userspace/export/delivery.h \
 userspace/base/jsonw.h userspace/export/sink.h userspace/tracer/config.h \
 userspace/base/log.h userspace/capture/elfsym.h userspace/capture/sym.h \
 build-asan/skel/func.skel.h build-asan/skel/tls.skel.h
userspace/tracer/run.h:
userspace/capture/container.h:
userspace/record/identity.h:
userspace/capture/target.h:
userspace/record/proc.h:
userspace/capture/units.h:
userspace/pipeline/pipeline.h:
userspace/events/decode.h:
userspace/capture/spec.h:
bpf/agtrace.h:
userspace/capture/handlers.h:
userspace/record/stage.h:
userspace/streams/conn.h:
userspace/protocols/http.h:
userspace/trace/trace.h:
userspace/record/span.h:
userspace/trace/emit.h:
userspace/base/util.h:
userspace/capture/sampling.h:
userspace/capture/select.h:
userspace/export/exporters.h:
userspace/export/delivery.h:
userspace/base/jsonw.h:
userspace/export/sink.h:
userspace/tracer/config.h:
userspace/base/log.h:
userspace/capture/elfsym.h:
userspace/capture/sym.h:
build-asan/skel/func.skel.h:
build-asan/skel/tls.skel.h:
