#include "export/exporters.h"
#include "base/log.h"
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

const struct agt_exporter agt_exporters[AGT_EXP_COUNT] = {
    [AGT_EXP_ELASTICSEARCH] = {"elasticsearch", "--es", NULL, 1, agt_es_open},
    [AGT_EXP_OTLP] = {"otlp", "--otlp", "otlp", 0, agt_otlp_open},
    [AGT_EXP_FLUENTD] = {"fluentd", "--fluentd", "fluentd", 0, agt_fluentd_open},
};

struct agt_delivery *agt_exporter_start(enum agt_exporter_id id, const struct agt_exporter_config *c,
					const struct agt_delivery_config *shared,
					const struct agt_export_ctx *x, char *err, size_t errlen)
{
	const struct agt_exporter *e = &agt_exporters[id];
	struct agt_delivery_config d = *shared;
	const struct agt_transport_ops *ops;
	char dir[1024];
	void *t;

	if (!d.spool_dir)
		d.spool_dir = "/var/lib/agtrace/spool";
	if (e->spool_sub) { /* each exporter spools apart */
		mkdir(d.spool_dir, 0700);
		snprintf(dir, sizeof(dir), "%s/%s", d.spool_dir, e->spool_sub);
		d.spool_dir = dir;
	}
	if (!e->owns_dead_letter)
		d.dead_letter = NULL;
	if (e->open(c, x, &ops, &t, err, errlen))
		return NULL;
	return agt_delivery_start(ops, t, &d, x, err, errlen);
}
