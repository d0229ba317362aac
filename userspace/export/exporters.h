/* The network exporters, one row each: what options parsing, `run --config`, the attach run,
 * the summary and the metrics iterate. An exporter is a transport (how a span becomes a
 * document, how a batch is sent) on the shared delivery core (export/delivery.c). Adding one is
 * its transport file plus a row here. Each exporter gets only its own settings: credentials
 * given to one are never sent to another. */
#ifndef AGT_EXPORTERS_H
#define AGT_EXPORTERS_H
#include <stddef.h>
#include "export/delivery.h"

enum agt_exporter_id {
	AGT_EXP_ELASTICSEARCH = 0,
	AGT_EXP_OTLP = 1,
	AGT_EXP_FLUENTD = 2,
	AGT_EXP_COUNT = 3,
};

#define AGT_MAX_HEADERS 32

/* One exporter's settings. A field an exporter does not use stays unset. */
struct agt_exporter_config {
	const char *url; /* Elasticsearch or OTLP URL, Fluentd host:port; NULL: exporter off */
	const char *index_pattern; /* Elasticsearch: strftime pattern, UTC */
	const char *api_key_file;  /* Elasticsearch: else $AGTRACE_ES_API_KEY */
	const char *user;	   /* Elasticsearch: basic auth user */
	const char *password_file; /* Elasticsearch: its password; else $AGTRACE_ES_PASSWORD */
	const char *ca_file;	   /* Elasticsearch, OTLP: CA bundle for TLS */
	int insecure;		   /* Elasticsearch, OTLP: no TLS verification */
	int install_template;	   /* Elasticsearch: PUT the index template and ILM policy */
	const char *tag;	   /* Fluentd: the tag (default agentic.traces) */
	/* OTLP (each also from its OTEL_EXPORTER_OTLP_* variable, see agt_otlp_config_env) */
	const char *headers[AGT_MAX_HEADERS]; /* "Name=value" (--otlp-header) */
	int nheaders;
	const char *protocol;			/* http/protobuf (default) or http/json */
	long timeout_ms;			/* per request; 0: 10000 */
	const char *client_cert, *client_key; /* TLS client certificate and key */
	const char *compression;		/* gzip (default) or none */
	/* Where url came from when no option gave it ("$OTEL_EXPORTER_OTLP_ENDPOINT", ...), for
	 * messages; url_exact: used as it is, no /v1/traces added (the signal's own variable). */
	const char *url_from;
	int url_exact;
};

struct agt_exporter {
	const char *name;	   /* elasticsearch, otlp, fluentd */
	const char *option;	   /* the option that turns it on, for messages: --es */
	const char *spool_sub;	   /* its spool folder under --spool-dir; NULL: that folder */
	int owns_dead_letter;	   /* --dead-letter names its dead-letter file */
	/* Its transport for these settings; -errno with one sentence in err. */
	int (*open)(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		    const struct agt_transport_ops **ops, void **t, char *err, size_t errlen);
};

extern const struct agt_exporter agt_exporters[AGT_EXP_COUNT];

/* Everything a run would refuse in exporter id's settings, checked without sending anything:
 * the URL (http:// or https://, a host, a port from 1 to 65535) or Fluentd's HOST:PORT, that
 * key, password and CA files can be read (a CA file holds a PEM certificate), OTLP's client
 * certificate and key (PEM, unencrypted, one the other's), each named by the option or the
 * variable it came from, and the transport's own checks. `--dry-run` and agt_exporter_start both
 * call it. 0, or -EINVAL with one sentence in err. */
int agt_exporter_check(enum agt_exporter_id id, const struct agt_exporter_config *c,
		       const struct agt_export_ctx *x, char *err, size_t errlen);

/* Start exporter id with its settings on a delivery core configured by shared (the spool
 * folder is the exporter's own under shared->spool_dir). NULL with one sentence in err. */
struct agt_delivery *agt_exporter_start(enum agt_exporter_id id, const struct agt_exporter_config *c,
					const struct agt_delivery_config *shared,
					const struct agt_export_ctx *x, char *err, size_t errlen);

/* OTLP settings not given as options, from the environment as the OpenTelemetry SDKs read it:
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL, used as it is) or OTEL_EXPORTER_OTLP_ENDPOINT
 * (a base URL: /v1/traces is appended) turn the exporter on; ..._PROTOCOL, ..._TIMEOUT,
 * ..._CERTIFICATE, ..._CLIENT_CERTIFICATE, ..._CLIENT_KEY, ..._COMPRESSION (the TRACES_ form
 * first); headers and OTEL_RESOURCE_ATTRIBUTES are checked here and read when the exporter
 * starts. 0, or -EINVAL with one sentence in err (a value agtrace cannot use). */
int agt_otlp_config_env(struct agt_exporter_config *c, char *err, size_t errlen);

/* The transports (es.c, otlp.c, fluentd.c). */
int agt_es_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		const struct agt_transport_ops **ops, void **t, char *err, size_t errlen);
int agt_otlp_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		  const struct agt_transport_ops **ops, void **t, char *err, size_t errlen);
int agt_fluentd_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		     const struct agt_transport_ops **ops, void **t, char *err, size_t errlen);
#endif
