#include "export/exporters.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

const struct agt_exporter agt_exporters[AGT_EXP_COUNT] = {
    [AGT_EXP_ELASTICSEARCH] = {"elasticsearch", "--es", NULL, 1, agt_es_open},
    [AGT_EXP_OTLP] = {"otlp", "--otlp", "otlp", 0, agt_otlp_open},
    [AGT_EXP_FLUENTD] = {"fluentd", "--fluentd", "fluentd", 0, agt_fluentd_open},
};

/* An http:// or https:// URL with a host and, if it names one, a port from 1 to 65535; a
 * mistake is shown as given (given: the option's value or the variable's). */
static int check_url(const char *option, const char *url, const char *given, char *err,
		     size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *shown;
	int rc = 0;
	long p;

	if (!u)
		return -ENOMEM;
	shown = agt_redact_url(given); /* its password is not shown */
	if (curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || !host[0] ||
	    strncmp(url, scheme, strlen(scheme)))
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s \"%s\" is not an http:// or https:// URL with a host (for "
				"example http://127.0.0.1:4318)",
				option, shown ? shown : "");
	else if (!curl_url_get(u, CURLUPART_PORT, &port, 0) && agt_parse_long(port, 1, 65535, &p))
		rc = agt_seterr(err, errlen, -EINVAL, "%s \"%s\": the port must be 1 to 65535",
				option, shown ? shown : "");
	free(shown);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* A file the exporter reads at start: there and readable; a CA bundle or a client certificate
 * holds a certificate, a client key an unencrypted private key. */
enum file_kind { PLAIN, CERT, KEY };

static int check_file(const char *option, const char *path, enum file_kind kind, char *err,
		      size_t errlen)
{
	char *text;
	int rc = 0;

	if (!path)
		return 0;
	if (!(text = agt_read_file(path, 16 << 20, NULL)))
		return agt_seterr(err, errlen, -EINVAL, "%s %s cannot be read: %s", option, path,
				  strerror(errno));
	if (kind == CERT && !strstr(text, "-----BEGIN CERTIFICATE-----"))
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
				option, path);
	else if (kind == KEY && strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s %s is encrypted; give the key unencrypted (openssl pkey -in "
				"KEY -out PLAIN), kept in a file only agtrace can read",
				option, path);
	else if (kind == KEY && !strstr(text, "PRIVATE KEY-----"))
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s %s holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
				option, path);
	memset(text, 0, strlen(text)); /* a key's text */
	free(text);
	return rc;
}

/* Where an OTLP setting came from, for messages: the option, else the variable it was read
 * from (agt_otlp_config_env keeps the environment's own string, so the pointer says which). */
static const char *otlp_source(const char *value, const char *option, const char *what, char *buf,
			       size_t n)
{
	const char *prefix[] = {"OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_"};

	for (int i = 0; i < 2; i++) {
		snprintf(buf, n, "%s%s", prefix[i], what);
		if (value && getenv(buf) == value) {
			snprintf(buf, n, "$%s%s", prefix[i], what);
			return buf;
		}
	}
	return option;
}

/* An encrypted key is refused before OpenSSL would ask a terminal for its passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* The client certificate and its key belong together: checked as TLS would at the first
 * request, with OpenSSL. */
static int check_key_pair(const char *cert_name, const char *cert, const char *key_name,
			  const char *key, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(cert, "r");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = NULL;
	int rc = 0;

	BIO_free(b);
	if (!x) {
		rc = agt_seterr(err, errlen, -EINVAL, "%s %s holds no certificate OpenSSL can read",
				cert_name, cert);
		goto out;
	}
	if (key) { /* else the key is in the certificate's file (as curl reads it) */
		b = BIO_new_file(key, "r");
		k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
		BIO_free(b);
	} else if ((b = BIO_new_file(cert, "r"))) {
		k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
		BIO_free(b);
	}
	if (!k && key)
		rc = agt_seterr(err, errlen, -EINVAL, "%s %s holds no private key OpenSSL can read",
				key_name, key);
	else if (!k)
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s %s has no private key in it: give its key with %s", cert_name,
				cert, key_name);
	else if (X509_check_private_key(x, k) != 1)
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s %s is not the key of the certificate %s %s", key_name, key,
				cert_name, cert);
out:
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

int agt_exporter_check(enum agt_exporter_id id, const struct agt_exporter_config *c,
		       const struct agt_export_ctx *x, char *err, size_t errlen)
{
	const struct agt_exporter *e = &agt_exporters[id];
	struct agt_exporter_config quiet = *c;
	const struct agt_transport_ops *ops;
	void *t;
	int rc;

	/* Fluentd's HOST:PORT is checked by its transport's open, at the end. */
	if (id != AGT_EXP_FLUENTD) {
		/* an endpoint from the environment is shown as the variable holds it */
		const char *env = c->url_from ? getenv(c->url_from + 1) : NULL;
		const char *url = c->url ? c->url : "";

		if ((rc = check_url(c->url_from ? c->url_from : e->option, url, env ? env : url,
				    err, errlen)))
			return rc;
	}
	if (id == AGT_EXP_OTLP) {
		char ca[80], crt[80], key[80];
		const char *ca_name =
		    otlp_source(c->ca_file, "--otlp-ca", "CERTIFICATE", ca, sizeof(ca));
		const char *crt_name = otlp_source(c->client_cert, "--otlp-client-cert",
						   "CLIENT_CERTIFICATE", crt, sizeof(crt));
		const char *key_name =
		    otlp_source(c->client_key, "--otlp-client-key", "CLIENT_KEY", key, sizeof(key));

		if ((rc = check_file(ca_name, c->ca_file, CERT, err, errlen)) ||
		    (rc = check_file(crt_name, c->client_cert, CERT, err, errlen)) ||
		    (rc = check_file(key_name, c->client_key, KEY, err, errlen)))
			return rc;
		if (c->client_key && !c->client_cert)
			return agt_seterr(err, errlen, -EINVAL,
					  "%s %s needs its certificate: --otlp-client-cert FILE or "
					  "$OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
					  key_name, c->client_key);
		if (c->client_cert && (rc = check_key_pair(crt_name, c->client_cert, key_name,
							   c->client_key, err, errlen)))
			return rc;
	} else if ((rc = check_file("--es-api-key-file", c->api_key_file, PLAIN, err, errlen)) ||
		   (rc = check_file("--es-password-file", c->password_file, PLAIN, err, errlen)) ||
		   (rc = check_file("--es-ca", c->ca_file, CERT, err, errlen))) {
		return rc;
	}
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
