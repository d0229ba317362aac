/* Sampling state shared with the kernel: one agt_sample_cfg per source in an array map, pinned
 * in the run's own folder (capture/units.h) and changed at run time by `agtrace sample set`. */
#ifndef AGT_SAMPLING_H
#define AGT_SAMPLING_H
#include <stddef.h>
#include "agtrace.h"

extern const char *const agt_sample_source_names[AGT_SS_MAX];

/* The largest rate, burst and byte cap a source may have (what the parser accepts, and what
 * the run clamps a value written into the map by someone else to). */
#define AGT_SAMPLE_LIMIT_MAX 0x7fffffffu

/* "tls=0.25,rate=100,burst=10,bytes=65536" (or just the ratio with source given apart) into
 * cfg (fields not named are left as they are). 0, or -EINVAL with one sentence in err. */
int agt_sample_parse(const char *spec, int *source, struct agt_sample_cfg *cfg, char *err,
		     size_t errlen);
/* One line describing a source's configuration, e.g. "tls ratio 0.25 rate 100/s ...". */
void agt_sample_describe(int source, const struct agt_sample_cfg *c, char *buf, size_t n);
#endif
