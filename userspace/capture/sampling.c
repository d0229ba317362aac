#include "capture/sampling.h"
#include "base/log.h"
#include "base/util.h"
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const agt_sample_source_names[AGT_SS_MAX] = {"func", "tls", "sock", "proc", "python"};

static int source_by_name(const char *s, size_t n)
{
	for (int i = 0; i < AGT_SS_MAX; i++)
		if (strlen(agt_sample_source_names[i]) == n &&
		    !strncmp(s, agt_sample_source_names[i], n))
			return i;
	return -1;
}

static int parse_ratio(const char *s, uint32_t *ppm)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0.0 && v <= 1.0))
		return -EINVAL;
	*ppm = (uint32_t)(v * AGT_SAMPLE_ONE + 0.5);
	return 0;
}

int agt_sample_parse(const char *spec, int *source, struct agt_sample_cfg *cfg, char *err,
		     size_t errlen)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		long v;
		int src;

		if (!eq) {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    "sampling \"%s\": expected NAME=VALUE (e.g. tls=0.25,rate=100)", tok);
			break;
		}
		*eq = 0;
		if ((src = source_by_name(tok, strlen(tok))) >= 0) {
			*source = src;
			if (parse_ratio(eq + 1, &cfg->ratio_ppm))
				rc = agt_seterr(
				    err, errlen, -EINVAL,
				    "sampling ratio for %s must be a number from 0 to 1, "
				    "got \"%s\"",
				    tok, eq + 1);
		} else if (!strcmp(tok, "rate") || !strcmp(tok, "burst") || !strcmp(tok, "bytes")) {
			if (agt_parse_long(eq + 1, 0, AGT_SAMPLE_LIMIT_MAX, &v))
				rc = agt_seterr(
				    err, errlen, -EINVAL,
				    "sampling %s must be a whole number (0 for no limit), got "
				    "\"%s\"",
				    tok, eq + 1);
			else if (!strcmp(tok, "rate"))
				cfg->rate = (uint32_t)v;
			else if (!strcmp(tok, "burst"))
				cfg->burst = (uint32_t)v;
			else
				cfg->byte_cap = (uint32_t)v;
		} else {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    "unknown sampling key \"%s\"; sources are func, tls, sock, proc, "
			    "python, and limits rate, burst, bytes",
			    tok);
		}
	}
	if (!rc && *source < 0)
		rc = agt_seterr(err, errlen, -EINVAL,
				"sampling \"%s\" names no source (func, tls, sock, proc or python)",
				spec);
	free(copy);
	return rc;
}

void agt_sample_describe(int source, const struct agt_sample_cfg *c, char *buf, size_t n)
{
	char rate[32] = "unlimited", bytes[32] = "default";

	if (c->rate)
		snprintf(rate, sizeof(rate), "%u/s burst %u", c->rate,
			 c->burst ? c->burst : c->rate);
	if (c->byte_cap)
		snprintf(bytes, sizeof(bytes), "%u", c->byte_cap);
	snprintf(buf, n, "%-6s ratio %.6g  rate %s  payload bytes %s",
		 agt_sample_source_names[source], (double)c->ratio_ppm / AGT_SAMPLE_ONE, rate,
		 bytes);
}
