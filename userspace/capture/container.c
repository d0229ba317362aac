#include "capture/container.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Pod metadata ----
 *
 * Where pods come from: the API server's pod list of this node (in a pod, or --k8s-pods-url
 * .../api/v1/pods?fieldSelector=spec.nodeName=NODE), or the kubelet's /pods. From the API
 * server, a thread of its own lists the node's pods once and then watches them (watch=1 from
 * the list's resourceVersion, bookmarks asked for; listed again when the server says the
 * version is too old, 410), so a new pod is known as soon as the API server has it and nothing
 * is polled. The kubelet's /pods cannot be watched: it is listed again (at most every 5 s) when
 * a process of an unknown pod appears. Either way the thread or the fetch hands over whole pod
 * records, and only the event loop's thread reads and changes the table.
 *
 * Each pod's workload is its controller owner (ownerReferences): a StatefulSet, DaemonSet or
 * Job as they are; a ReplicaSet's own owner, a Deployment, through a GET of the ReplicaSet
 * (cached per ReplicaSet). What this asks of the API server, for the RBAC: pods list and watch
 * (the node's, by field selector), replicasets get. When a ReplicaSet cannot be read (the
 * kubelet's list, no permission), a ReplicaSet named <deployment>-<the pod's pod-template-hash>
 * is taken as that Deployment's. */

#define MAX_CONTAINERS 16

struct pod {
	char uid[37], name[254], ns[64];
	cJSON *labels; /* object, owned */
	char owner_kind[16], owner_name[254], replicaset[254];
	char service[254], node[254];
	struct {
		char id[65], name[254];
	} containers[MAX_CONTAINERS];
	int ncontainers;
};

/* What the watch thread hands over: a whole new list, a pod added or changed, a pod gone. */
struct change {
	struct change *next;
	int kind; /* 0 list (pods[0..n)), 1 upsert, 2 delete */
	struct pod *pods;
	unsigned n;
};

struct rs_owner {
	char key[320]; /* namespace/name */
	char deployment[254];
};

struct agt_k8s {
	char url[1024], token_file[512], ca_file[512];
	char api[512]; /* scheme://host:port of the API server; "" for the kubelet */
	int insecure;
	struct pod *pods; /* the event loop's */
	unsigned npods;
	time_t last_fetch;
	_Atomic uint64_t requests, failures;
	_Atomic int warned;
	/* The watch thread (API server only). */
	int watch;
	pthread_t thread;
	pthread_mutex_t lock; /* guards changes, listed */
	pthread_cond_t listed_cond;
	struct change *changes, **tail;
	_Atomic int listed; /* the first list arrived (or failed) */
	_Atomic int stop;
	char rv[64];	 /* the watch thread's resourceVersion */
	struct rs_owner *rs; /* the thread's ReplicaSet cache (or the fetch's, polling) */
	unsigned nrs;
	_Atomic uint64_t watch_events;
};

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define REFRESH_MIN_S 5
#define RS_CACHE_MAX 4096

static void *watch_main(void *arg);

struct agt_k8s *agt_k8s_new(const struct agt_k8s_config *cfg, char *err, size_t errlen)
{
	struct agt_k8s *k;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *node = getenv("NODE_NAME");
	char url[1024];
	const char *path;

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
	/* The API server: its pod list can be watched, and ReplicaSets read next to it. */
	path = strchr(strstr(url, "://") + 3, '/');
	if (path && !strncmp(path, "/api/v1/pods", 12) && (!path[12] || path[12] == '?')) {
		snprintf(k->api, sizeof(k->api), "%.*s", (int)(path - url), url);
		k->watch = 1;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->listed_cond, NULL);
	k->tail = &k->changes;
	if (k->watch && pthread_create(&k->thread, NULL, watch_main, k)) {
		k->watch = 0; /* no thread: listed on demand, as from the kubelet */
		k->listed = 1;
	}
	return k;
}

static void free_pods(struct pod *pods, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		cJSON_Delete(pods[i].labels);
	free(pods);
}

static void clear_pods(struct agt_k8s *k)
{
	free_pods(k->pods, k->npods);
	k->pods = NULL;
	k->npods = 0;
}

void agt_k8s_free(struct agt_k8s *k)
{
	struct change *c, *next;

	if (!k)
		return;
	if (k->watch) {
		k->stop = 1;
		pthread_join(k->thread, NULL);
	}
	for (c = k->changes; c; c = next) {
		next = c->next;
		free_pods(c->pods, c->n);
		free(c);
	}
	clear_pods(k);
	free(k->rs);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->listed_cond);
	free(k);
}

struct body {
	char *p;
	size_t n;
	/* a watch: complete lines go to on_line as they come */
	void (*on_line)(struct agt_k8s *k, const char *line);
	struct agt_k8s *k;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm;
	char *np, *nl;

	if (b->n + n > (64u << 20) || !(np = realloc(b->p, b->n + n + 1)))
		return 0; /* a pod list (or one event) over 64 MiB is not one node's */
	memcpy(np + b->n, d, n);
	b->p = np;
	b->n += n;
	b->p[b->n] = 0;
	while (b->on_line && (nl = memchr(b->p, '\n', b->n))) {
		size_t used = (size_t)(nl - b->p) + 1;

		*nl = 0;
		b->on_line(b->k, b->p);
		memmove(b->p, b->p + used, b->n - used + 1);
		b->n -= used;
	}
	return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct agt_k8s *k = arg;

	(void)a, (void)b, (void)c, (void)d;
	return k->stop; /* agtrace is stopping: end the transfer */
}

/* GET url with the bearer token: the HTTP status (0: no answer), the body in *b. timeout_ms 0:
 * a watch, as long as the server keeps it open. */
static long get(struct agt_k8s *k, const char *url, struct body *b, long timeout_ms, CURLcode *cc)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char *token = NULL, auth[8192];
	long status = 0;

	if (!c) {
		*cc = CURLE_OUT_OF_MEMORY;
		return 0;
	}
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
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, k);
	if (k->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
	if (k->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	*cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static void warn_failure(struct agt_k8s *k, CURLcode cc, long status)
{
	k->failures++;
	if (!k->warned++) {
		char *shown = agt_redact_url(k->url); /* its password is not shown */

		agt_warn("cannot list pods from %s (%s); spans carry container ids and pod "
			 "UIDs but no pod names until it answers; check the ServiceAccount's "
			 "RBAC (pods: list, watch) and --k8s-pods-url",
			 shown ? shown : "", cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
		free(shown);
	} else
		agt_dbg("pod list: %s, HTTP %ld", curl_easy_strerror(cc), status);
}

static void warn_not_podlist(struct agt_k8s *k)
{
	char *shown = agt_redact_url(k->url);

	agt_warn("%s answered something that is not a PodList (no \"items\" array)",
		 shown ? shown : "");
	free(shown);
}

/* The Deployment that owns ReplicaSet ns/name ("" when none), cached. */
static const char *rs_deployment(struct agt_k8s *k, const char *ns, const char *name,
				 const cJSON *pod_labels, int *known)
{
	char key[320], url[1400];
	struct body b = {0};
	CURLcode cc;
	long status;
	const char *hash;
	size_t hl, nl;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	for (unsigned i = 0; i < k->nrs; i++)
		if (!strcmp(k->rs[i].key, key)) {
			*known = 1;
			return k->rs[i].deployment;
		}
	*known = 0;
	if (k->api[0] && k->nrs < RS_CACHE_MAX) {
		snprintf(url, sizeof(url), "%s/apis/apps/v1/namespaces/%s/replicasets/%s", k->api,
			 ns, name);
		status = get(k, url, &b, 3000, &cc);
		if (cc == CURLE_OK && status == 200) {
			cJSON *rs = cJSON_Parse(b.p ? b.p : "");
			const cJSON *o, *refs = cJSON_GetObjectItemCaseSensitive(
					    cJSON_GetObjectItemCaseSensitive(rs, "metadata"),
					    "ownerReferences");
			struct rs_owner *n = realloc(k->rs, (k->nrs + 1) * sizeof(*k->rs));

			free(b.p);
			if (n) {
				k->rs = n;
				snprintf(n[k->nrs].key, sizeof(n[0].key), "%s", key);
				n[k->nrs].deployment[0] = 0;
				cJSON_ArrayForEach(o, refs)
				{
					const char *kind = cJSON_GetStringValue(
					    cJSON_GetObjectItemCaseSensitive(o, "kind"));
					const char *on = cJSON_GetStringValue(
					    cJSON_GetObjectItemCaseSensitive(o, "name"));

					if (kind && on && !strcmp(kind, "Deployment"))
						snprintf(n[k->nrs].deployment,
							 sizeof(n[0].deployment), "%s", on);
				}
				cJSON_Delete(rs);
				*known = 1;
				return k->rs[k->nrs++].deployment;
			}
			cJSON_Delete(rs);
			return "";
		}
		free(b.p);
		agt_dbg("ReplicaSet %s: %s, HTTP %ld", key, curl_easy_strerror(cc), status);
	}
	/* Not readable: <deployment>-<pod-template-hash>, as the Deployment controller names it. */
	hash = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pod_labels, "pod-template-hash"));
	hl = hash ? strlen(hash) : 0;
	nl = strlen(name);
	if (hl && nl > hl + 1 && name[nl - hl - 1] == '-' && !strcmp(name + nl - hl, hash)) {
		static __thread char dep[254];

		snprintf(dep, sizeof(dep), "%.*s", (int)(nl - hl - 1), name);
		return dep;
	}
	return "";
}

/* One pod of a PodList (or a watch event) into p; -1 when it is not one. */
static int parse_pod(struct agt_k8s *k, const cJSON *it, struct pod *p)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(it, "spec");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(it, "status");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	const char *svc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(md, "annotations"),
	    "resource.opentelemetry.io/service.name"));
	const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName"));
	const cJSON *o, *owner = NULL;
	static const char *const lists[] = {"containerStatuses", "initContainerStatuses"};

	memset(p, 0, sizeof(*p));
	if (!uid || !name || strlen(uid) != 36)
		return -1;
	snprintf(p->uid, sizeof(p->uid), "%s", uid);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->ns, sizeof(p->ns), "%s", ns ? ns : "");
	snprintf(p->service, sizeof(p->service), "%s", svc ? svc : "");
	snprintf(p->node, sizeof(p->node), "%s", node ? node : "");
	p->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : NULL;
	/* The controller among the owners (else the first). */
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"))
	if (!owner || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "controller"))) owner = o;
	if (owner) {
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(owner, "kind"));
		const char *on = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(owner, "name"));

		if (kind && on && !strcmp(kind, "ReplicaSet")) {
			int known;
			const char *dep = rs_deployment(k, p->ns, on, labels, &known);

			snprintf(p->replicaset, sizeof(p->replicaset), "%s", on);
			snprintf(p->owner_kind, sizeof(p->owner_kind), "%s",
				 dep[0] ? "Deployment" : "ReplicaSet");
			snprintf(p->owner_name, sizeof(p->owner_name), "%s", dep[0] ? dep : on);
			if (!dep[0])
				p->replicaset[0] = 0;
		} else if (kind && on) {
			snprintf(p->owner_kind, sizeof(p->owner_kind), "%s", kind);
			snprintf(p->owner_name, sizeof(p->owner_name), "%s", on);
		}
	}
	/* Which container is which: "containerd://<64 hex>" and its name. */
	for (size_t l = 0; l < 2; l++)
		cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(status, lists[l]))
		{
			const char *cid = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(o, "containerID"));
			const char *cn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
			const char *sep = cid ? strstr(cid, "://") : NULL;

			if (!sep || !cn || strlen(sep + 3) != 64 || p->ncontainers == MAX_CONTAINERS)
				continue;
			snprintf(p->containers[p->ncontainers].id, sizeof(p->containers[0].id), "%s",
				 sep + 3);
			snprintf(p->containers[p->ncontainers++].name, sizeof(p->containers[0].name),
				 "%s", cn);
		}
	return 0;
}

/* A PodList body into a new array of pods; -EPROTO when it is not one. */
static int parse_list(struct agt_k8s *k, const char *text, struct pod **out, unsigned *n,
		      char *rv, size_t rvn)
{
	cJSON *doc = cJSON_Parse(text ? text : ""), *items, *it;
	const char *v;

	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	if (!cJSON_IsArray(items)) {
		cJSON_Delete(doc);
		return -EPROTO;
	}
	if (rv && (v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		       cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "resourceVersion"))))
		snprintf(rv, rvn, "%s", v);
	*n = 0;
	*out = calloc(cJSON_GetArraySize(items) + 1, sizeof(**out));
	cJSON_ArrayForEach(it, items) if (*out && !parse_pod(k, it, &(*out)[*n]))(*n)++;
	cJSON_Delete(doc);
	return *out ? 0 : -ENOMEM;
}

/* Hand a change over to the event loop. */
static void hand_over(struct agt_k8s *k, int kind, struct pod *pods, unsigned n)
{
	struct change *c = calloc(1, sizeof(*c));

	if (!c) {
		free_pods(pods, n);
		return;
	}
	*c = (struct change){NULL, kind, pods, n};
	pthread_mutex_lock(&k->lock);
	*k->tail = c;
	k->tail = &c->next;
	if (kind == 0)
		k->listed = 1;
	pthread_cond_broadcast(&k->listed_cond);
	pthread_mutex_unlock(&k->lock);
}

/* The polling way (the kubelet): replace the table with the list at k->url. */
static int fetch(struct agt_k8s *k)
{
	struct body b = {0};
	CURLcode cc;
	long status = get(k, k->url, &b, 3000, &cc);
	struct pod *pods;
	unsigned n;
	int rc;

	if (cc != CURLE_OK || status != 200) {
		warn_failure(k, cc, status);
		free(b.p);
		return -EIO;
	}
	rc = parse_list(k, b.p, &pods, &n, NULL, 0);
	free(b.p);
	if (rc) {
		k->failures++;
		warn_not_podlist(k);
		return rc;
	}
	clear_pods(k);
	k->pods = pods;
	k->npods = n;
	agt_dbg("pod list: %u pods", k->npods);
	return 0;
}

/* ---- the watch thread ---- */

/* One line of a watch: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}. */
static void on_event(struct agt_k8s *k, const char *line)
{
	cJSON *ev = cJSON_Parse(line);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion"));
	struct pod *p;

	if (!type) {
		cJSON_Delete(ev);
		return;
	}
	k->watch_events++;
	if (!strcmp(type, "ERROR")) { /* 410 Gone: the version is too old; list again */
		k->rv[0] = 0;
		cJSON_Delete(ev);
		return;
	}
	if (rv)
		snprintf(k->rv, sizeof(k->rv), "%s", rv);
	if ((!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) &&
	    (p = calloc(1, sizeof(*p)))) {
		if (parse_pod(k, obj, p))
			free(p);
		else
			hand_over(k, !strcmp(type, "DELETED") ? 2 : 1, p, 1);
	}
	cJSON_Delete(ev);
}

static void nap(struct agt_k8s *k, int seconds)
{
	for (int i = 0; i < seconds * 10 && !k->stop; i++)
		usleep(100000);
}

static void *watch_main(void *arg)
{
	struct agt_k8s *k = arg;
	char url[1400];
	int backoff = 1;

	while (!k->stop) {
		struct body b = {0};
		CURLcode cc;
		long status;

		if (!k->rv[0]) { /* list: the whole table, and where the watch starts */
			struct pod *pods;
			unsigned n;

			status = get(k, k->url, &b, 3000, &cc);
			if (cc != CURLE_OK || status != 200 ||
			    parse_list(k, b.p, &pods, &n, k->rv, sizeof(k->rv))) {
				if (cc == CURLE_OK && status == 200)
					warn_not_podlist(k);
				else if (!k->stop)
					warn_failure(k, cc, status);
				free(b.p);
				pthread_mutex_lock(&k->lock);
				k->listed = 1; /* nobody waits for it any longer */
				pthread_cond_broadcast(&k->listed_cond);
				pthread_mutex_unlock(&k->lock);
				nap(k, backoff);
				backoff = backoff < 30 ? 2 * backoff : 30;
				continue;
			}
			free(b.p);
			b = (struct body){0};
			agt_dbg("pod list: %u pods, resourceVersion %s", n, k->rv);
			hand_over(k, 0, pods, n);
		}
		snprintf(url, sizeof(url),
			 "%s%swatch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=300",
			 k->url, strchr(k->url, '?') ? "&" : "?", k->rv);
		b.on_line = on_event;
		b.k = k;
		status = get(k, url, &b, 0, &cc);
		free(b.p);
		if (k->stop)
			break;
		if (cc == CURLE_OK && status == 200) {
			backoff = 1; /* the server ended it (timeoutSeconds): watch on */
			continue;
		}
		if (status == 410)
			k->rv[0] = 0;
		else
			warn_failure(k, cc, status);
		nap(k, backoff);
		backoff = backoff < 30 ? 2 * backoff : 30;
	}
	return NULL;
}

/* ---- the event loop's side ---- */

static struct pod *find(struct agt_k8s *k, const char *uid)
{
	for (unsigned i = 0; i < k->npods; i++)
		if (!strcmp(k->pods[i].uid, uid))
			return &k->pods[i];
	return NULL;
}

/* What the watch thread handed over, into the table. */
static void apply_changes(struct agt_k8s *k)
{
	struct change *c, *next;

	if (!k->watch)
		return;
	pthread_mutex_lock(&k->lock);
	c = k->changes;
	k->changes = NULL;
	k->tail = &k->changes;
	pthread_mutex_unlock(&k->lock);
	for (; c; c = next) {
		struct pod *p = c->kind ? find(k, c->pods[0].uid) : NULL;

		next = c->next;
		if (c->kind == 0) {
			clear_pods(k);
			k->pods = c->pods;
			k->npods = c->n;
			c->pods = NULL;
		} else if (c->kind == 1 && p) {
			cJSON_Delete(p->labels);
			*p = c->pods[0];
			c->pods[0].labels = NULL;
		} else if (c->kind == 1) {
			struct pod *np = realloc(k->pods, (k->npods + 1) * sizeof(*np));

			if (np) {
				k->pods = np;
				k->pods[k->npods++] = c->pods[0];
				c->pods[0].labels = NULL;
			}
		} else if (p) {
			cJSON_Delete(p->labels);
			*p = k->pods[--k->npods];
		}
		free_pods(c->pods, c->pods ? c->n : 0);
		free(c);
	}
}

/* The first time: give the watch thread's first list a moment, so that the processes running
 * at start find their pods. */
static void first_list(struct agt_k8s *k)
{
	struct timespec until;

	pthread_mutex_lock(&k->lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	while (!k->listed)
		if (pthread_cond_timedwait(&k->listed_cond, &k->lock, &until))
			break;
	pthread_mutex_unlock(&k->lock);
}

int agt_k8s_lookup(struct agt_k8s *k, struct agt_identity *id)
{
	struct pod *p;
	time_t now = time(NULL);

	if (!k || !id->pod_uid[0])
		return 0;
	if (k->watch) {
		if (!k->listed)
			first_list(k);
		apply_changes(k);
		p = find(k, id->pod_uid);
	} else if (!(p = find(k, id->pod_uid)) && now - k->last_fetch >= REFRESH_MIN_S) {
		k->last_fetch = now;
		if (fetch(k) == 0)
			p = find(k, id->pod_uid);
	}
	if (!p)
		return 0;
	snprintf(id->pod_name, sizeof(id->pod_name), "%s", p->name);
	snprintf(id->pod_namespace, sizeof(id->pod_namespace), "%s", p->ns);
	snprintf(id->owner_kind, sizeof(id->owner_kind), "%s", p->owner_kind);
	snprintf(id->owner_name, sizeof(id->owner_name), "%s", p->owner_name);
	snprintf(id->replicaset, sizeof(id->replicaset), "%s", p->replicaset);
	snprintf(id->service_name, sizeof(id->service_name), "%s", p->service);
	snprintf(id->node_name, sizeof(id->node_name), "%s", p->node);
	id->container_name[0] = 0;
	for (int i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i].id, id->container_id))
			snprintf(id->container_name, sizeof(id->container_name), "%s",
				 p->containers[i].name);
	return 1;
}

const char *agt_k8s_label(struct agt_k8s *k, const char *pod_uid, const char *key)
{
	struct pod *p;

	if (!k || !pod_uid[0])
		return NULL;
	apply_changes(k);
	p = find(k, pod_uid);
	return p ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p->labels, key)) : NULL;
}

void agt_k8s_stats(const struct agt_k8s *k, uint64_t *requests, uint64_t *failures, unsigned *pods)
{
	*requests = k ? k->requests : 0;
	*failures = k ? k->failures : 0;
	*pods = k ? k->npods : 0;
}
