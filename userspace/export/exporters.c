#include "export/exporters.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const struct agt_exporter agt_exporters[AGT_EXP_COUNT] = {
    [AGT_EXP_ELASTICSEARCH] = {"elasticsearch", "--es", NULL, 1, agt_es_open},
    [AGT_EXP_OTLP] = {"otlp", "--otlp", "otlp", 0, agt_otlp_open},
    [AGT_EXP_FLUENTD] = {"fluentd", "--fluentd", "fluentd", 0, agt_fluentd_open},
};

/* An http:// or https:// URL with a host and, if it names one, a port from 1 to 65535. */
static int check_url(const struct agt_exporter *e, const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = 0;
	long p;

	if (!u)
		return -ENOMEM;
	{
	char *shown = agt_redact_url(url); /* its password is not shown */

	if (curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || !host[0] ||
	    strncmp(url, scheme, strlen(scheme)))
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s \"%s\" is not an http:// or https:// URL with a host (for "
				"example http://127.0.0.1:4318)",
				e->option, shown ? shown : "");
	else if (!curl_url_get(u, CURLUPART_PORT, &port, 0) && agt_parse_long(port, 1, 65535, &p))
		rc = agt_seterr(err, errlen, -EINVAL, "%s \"%s\": the port must be 1 to 65535",
				e->option, shown ? shown : "");
	free(shown);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* A file the exporter reads at start: there and readable; a CA bundle holds a certificate. */
static int check_file(const char *option, const char *path, int pem, char *err, size_t errlen)
{
	char *text;

	if (!path)
		return 0;
	if (!(text = agt_read_file(path, 16 << 20, NULL)))
		return agt_seterr(err, errlen, -EINVAL, "%s %s cannot be read: %s", option, path,
				  strerror(errno));
	if (pem && !strstr(text, "-----BEGIN CERTIFICATE-----")) {
		free(text);
		return agt_seterr(err, errlen, -EINVAL,
				  "%s %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
				  option, path);
	}
	free(text);
	return 0;
}

int agt_exporter_check(enum agt_exporter_id id, const struct agt_exporter_config *c,
		       const struct agt_export_ctx *x, char *err, size_t errlen)
{
	const struct agt_exporter *e = &agt_exporters[id];
	struct agt_exporter_config quiet = *c;
	const struct agt_transport_ops *ops;
	void *t;
	int rc;

	if (id == AGT_EXP_FLUENTD) {
		const char *addr = c->url && !strncmp(c->url, "tcp://", 6) ? c->url + 6 : c->url;
		const char *colon = addr ? strrchr(addr, ':') : NULL;
		long port;

		if (!colon || colon == addr || agt_parse_long(colon + 1, 1, 65535, &port)) {
			char *shown = agt_redact_url(c->url ? c->url : ""); /* no password shown */

			rc = agt_seterr(err, errlen, -EINVAL,
					"%s \"%s\" is not HOST:PORT (for example 127.0.0.1:24224)",
					e->option, shown ? shown : "");
			free(shown);
			return rc;
		}
	} else if ((rc = check_url(e, c->url ? c->url : "", err, errlen))) {
		return rc;
	}
	if ((rc = check_file("--es-api-key-file", c->api_key_file, 0, err, errlen)) ||
	    (rc = check_file("--es-password-file", c->password_file, 0, err, errlen)) ||
	    (rc = check_file("--es-ca", c->ca_file, 1, err, errlen)))
		return rc;
	if (c->user && !c->password_file && !getenv("AGTRACE_ES_PASSWORD"))
		return agt_seterr(err, errlen, -EINVAL,
				  "--es-user %s needs its password: --es-password-file FILE or "
				  "$AGTRACE_ES_PASSWORD",
				  c->user);
	/* The transport's own checks (credentials from files or the environment, ...): opened and
	 * closed again, with nothing sent (no template installed). */
	quiet.install_template = 0;
	if ((rc = e->open(&quiet, x, &ops, &t, err, errlen)))
		return rc;
	ops->free(t);
	return 0;
}

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
	if (agt_exporter_check(id, c, x, err, errlen) || e->open(c, x, &ops, &t, err, errlen))
		return NULL;
	return agt_delivery_start(ops, t, &d, x, err, errlen);
}
