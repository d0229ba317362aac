#include "capture/container.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A pod UID inside a cgroup component: 8-4-4-4-12 hex with '-' (cgroupfs driver) or '_'
 * (systemd driver, which turns '-' into '_'). */
static int uid_at(const char *s, char *out)
{
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? (s[i] != '-' && s[i] != '_') : !isxdigit((unsigned char)s[i]))
			return 0;
		out[i] = dash ? '-' : (char)tolower((unsigned char)s[i]);
	}
	out[36] = 0;
	return 1;
}

static const struct {
	const char *prefix, *runtime;
} runtimes[] = {
    {"docker-", "docker"},	   {"cri-containerd-", "containerd"},
    {"containerd-", "containerd"}, {"crio-", "cri-o"},
    {"libpod-", "podman"},
};

/* The container id in the last component of a cgroup path, as the runtimes name it:
 * <id> (cgroupfs), docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, ... */
static void container_of(const char *path, struct agt_identity *id)
{
	const char *last = strrchr(path, '/');
	const char *s = last ? last + 1 : path, *runtime = "";
	size_t n;

	for (size_t i = 0; i < AGT_ARRAY_SIZE(runtimes); i++)
		if (!strncmp(s, runtimes[i].prefix, strlen(runtimes[i].prefix))) {
			s += strlen(runtimes[i].prefix);
			runtime = runtimes[i].runtime;
			break;
		}
	n = strcspn(s, ".");
	if (n != 64)
		return;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return;
	if (!runtime[0] && strstr(path, "/docker/"))
		runtime = "docker";
	memcpy(id->container_id, s, 64);
	id->container_id[64] = 0;
	snprintf(id->runtime, sizeof(id->runtime), "%s", runtime);
}

void agt_identity_parse_cgroup(const char *text, struct agt_identity *id)
{
	const char *line = text;

	id->cgroup[0] = id->container_id[0] = id->runtime[0] = id->pod_uid[0] = 0;
	while (line && *line) {
		const char *end = strchr(line, '\n'), *c1 = strchr(line, ':'), *c2;
		char path[512];
		size_t n;

		if (!end)
			end = line + strlen(line);
		c2 = c1 && c1 < end ? memchr(c1 + 1, ':', end - c1 - 1) : NULL;
		if (c2) {
			n = end - c2 - 1;
			if (n >= sizeof(path))
				n = sizeof(path) - 1;
			memcpy(path, c2 + 1, n);
			path[n] = 0;
			/* The unified hierarchy ("0::") names the cgroup; else the first non-root.
			 */
			if (strcmp(path, "/") && (!id->cgroup[0] || !strncmp(line, "0::", 3)))
				snprintf(id->cgroup, sizeof(id->cgroup), "%s", path);
			if (!id->pod_uid[0])
				for (const char *p = strstr(path, "pod"); p;
				     p = strstr(p + 1, "pod"))
					if (uid_at(p + 3, id->pod_uid))
						break;
			if (!id->container_id[0])
				container_of(path, id);
			/* podman (cgroup v2) puts the process one level down: <id>.scope/container
			 */
			if (!id->container_id[0] && strrchr(path, '/') &&
			    strrchr(path, '/') != path) {
				*strrchr(path, '/') = 0;
				container_of(path, id);
			}
		}
		line = *end ? end + 1 : NULL;
	}
}

int agt_identity_read(int pid, struct agt_identity *id)
{
	char path[64], *text;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if (!(text = agt_read_file(path, 1 << 16, NULL)))
		return -errno;
	agt_identity_parse_cgroup(text, id);
	free(text);
	return 0;
}

/* ---- Pod metadata ---- */

struct pod {
	char uid[37], name[254], ns[64];
	cJSON *labels; /* object, owned */
};

struct agt_k8s {
	char url[1024], token_file[512], ca_file[512];
	int insecure;
	struct pod *pods;
	unsigned npods;
	time_t last_fetch;
	uint64_t requests, failures;
	int warned;
};

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define REFRESH_MIN_S 5

struct agt_k8s *agt_k8s_new(const struct agt_k8s_config *cfg, char *err, size_t errlen)
{
	struct agt_k8s *k;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *node = getenv("NODE_NAME");
	char url[1024];

	if (cfg->pods_url) {
		if (strncmp(cfg->pods_url, "http://", 7) && strncmp(cfg->pods_url, "https://", 8)) {
			char *shown = agt_redact_url(cfg->pods_url); /* its password is not shown */

			agt_seterr(err, errlen, -EINVAL,
				   "--k8s-pods-url %s is not an http:// or https:// URL; give the "
				   "kubelet's https://NODE:10250/pods or the API server's "
				   "/api/v1/pods?fieldSelector=spec.nodeName=NODE",
				   shown ? shown : "");
			free(shown);
			return NULL;
		}
		snprintf(url, sizeof(url), "%s", cfg->pods_url);
	} else if (host && node) {
		snprintf(url, sizeof(url),
			 "https://%s%s%s:%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s",
			 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
			 port ? port : "443", node);
	} else {
		if (host)
			agt_warn(
			    "in a Kubernetes pod, but NODE_NAME is not set: pod names are not "
			    "looked up; set it from the downward API (fieldRef spec.nodeName), or "
			    "give --k8s-pods-url");
		return NULL; /* no Kubernetes here: pods stay nameless, cgroup identity still */
	}
	if (!(k = calloc(1, sizeof(*k))))
		return NULL;
	snprintf(k->url, sizeof(k->url), "%s", url);
	snprintf(k->token_file, sizeof(k->token_file), "%s",
		 cfg->token_file ? cfg->token_file : (cfg->pods_url ? "" : SA_DIR "/token"));
	snprintf(k->ca_file, sizeof(k->ca_file), "%s",
		 cfg->ca_file ? cfg->ca_file : (cfg->pods_url ? "" : SA_DIR "/ca.crt"));
	k->insecure = cfg->insecure;
	return k;
}

static void clear_pods(struct agt_k8s *k)
{
	for (unsigned i = 0; i < k->npods; i++)
		cJSON_Delete(k->pods[i].labels);
	free(k->pods);
	k->pods = NULL;
	k->npods = 0;
}

void agt_k8s_free(struct agt_k8s *k)
{
	if (!k)
		return;
	clear_pods(k);
	free(k);
}

struct body {
	char *p;
	size_t n;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm;
	char *np;

	if (b->n + n > (64u << 20) || !(np = realloc(b->p, b->n + n + 1)))
		return 0; /* a pod list over 64 MiB is not one node's */
	memcpy(np + b->n, d, n);
	b->p = np;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* Replace the cache with the pod list at k->url. */
static int fetch(struct agt_k8s *k)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct body b = {0};
	long status = 0;
	CURLcode cc;
	cJSON *doc, *items, *it;
	char *token = NULL, auth[8192];

	if (!c)
		return -ENOMEM;
	k->requests++;
	/* Read the token at every request: projected service account tokens rotate. */
	if (k->token_file[0] && (token = agt_read_file(k->token_file, 6000, NULL))) {
		token[strcspn(token, "\r\n")] = 0;
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		memset(auth, 0, sizeof(auth));
		memset(token, 0, strlen(token));
		free(token);
	}
	h = curl_slist_append(h, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, k->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (k->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
	if (k->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK || status != 200) {
		k->failures++;
		if (!k->warned++) {
			char *shown = agt_redact_url(k->url); /* its password is not shown */

			agt_warn(
			    "cannot list pods from %s (%s); spans carry container ids and pod "
			    "UIDs but no pod names until it answers; check the ServiceAccount's "
			    "RBAC (pods: list) and --k8s-pods-url",
			    shown ? shown : "",
			    cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
			free(shown);
		} else
			agt_dbg("pod list: %s, HTTP %ld", curl_easy_strerror(cc), status);
		free(b.p);
		return -EIO;
	}
	doc = cJSON_Parse(b.p ? b.p : "");
	free(b.p);
	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	if (!cJSON_IsArray(items)) {
		k->failures++;
		char *shown = agt_redact_url(k->url);

		agt_warn("%s answered something that is not a PodList (no \"items\" array)",
			 shown ? shown : "");
		free(shown);
		cJSON_Delete(doc);
		return -EPROTO;
	}
	clear_pods(k);
	k->pods = calloc(cJSON_GetArraySize(items) + 1, sizeof(*k->pods));
	cJSON_ArrayForEach(it, items)
	{
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));
		const char *name =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
		const char *ns =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
		struct pod *p;

		if (!k->pods || !uid || !name || strlen(uid) != 36)
			continue;
		p = &k->pods[k->npods++];
		snprintf(p->uid, sizeof(p->uid), "%s", uid);
		snprintf(p->name, sizeof(p->name), "%s", name);
		snprintf(p->ns, sizeof(p->ns), "%s", ns ? ns : "");
		p->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : NULL;
	}
	cJSON_Delete(doc);
	agt_dbg("pod list: %u pods", k->npods);
	return 0;
}

static struct pod *find(struct agt_k8s *k, const char *uid)
{
	for (unsigned i = 0; i < k->npods; i++)
		if (!strcmp(k->pods[i].uid, uid))
			return &k->pods[i];
	return NULL;
}

int agt_k8s_lookup(struct agt_k8s *k, struct agt_identity *id)
{
	struct pod *p;
	time_t now = time(NULL);

	if (!k || !id->pod_uid[0])
		return 0;
	if (!(p = find(k, id->pod_uid)) && now - k->last_fetch >= REFRESH_MIN_S) {
		k->last_fetch = now;
		if (fetch(k) == 0)
			p = find(k, id->pod_uid);
	}
	if (!p)
		return 0;
	snprintf(id->pod_name, sizeof(id->pod_name), "%s", p->name);
	snprintf(id->pod_namespace, sizeof(id->pod_namespace), "%s", p->ns);
	return 1;
}

const char *agt_k8s_label(struct agt_k8s *k, const char *pod_uid, const char *key)
{
	struct pod *p = k && pod_uid[0] ? find(k, pod_uid) : NULL;

	return p ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p->labels, key)) : NULL;
}

void agt_k8s_stats(const struct agt_k8s *k, uint64_t *requests, uint64_t *failures, unsigned *pods)
{
	*requests = k ? k->requests : 0;
	*failures = k ? k->failures : 0;
	*pods = k ? k->npods : 0;
}
