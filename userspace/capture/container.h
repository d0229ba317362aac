/* Container and Kubernetes identity of a process: container id and pod UID from its cgroup path,
 * pod name, namespace and labels from the kubelet or the API server (cached). */
#ifndef AGT_CONTAINER_H
#define AGT_CONTAINER_H
#include <stddef.h>
#include <stdint.h>
#include "record/identity.h"


/* Parse one /proc/PID/cgroup text into id (cgroup, container_id, runtime, pod_uid). */
void agt_identity_parse_cgroup(const char *text, struct agt_identity *id);
/* Read /proc/PID/cgroup; 0, or -errno when it cannot be read. */
int agt_identity_read(int pid, struct agt_identity *id);

/* Where pods are listed: a URL answering a PodList (the kubelet's /pods, or the API server's
 * /api/v1/pods?fieldSelector=spec.nodeName=NODE), a bearer token file and a CA bundle. */
struct agt_k8s_config {
	const char *pods_url;
	const char *token_file;
	const char *ca_file;
	int insecure;
};
struct agt_k8s;

/* NULL config fields are filled from the in-cluster environment (KUBERNETES_SERVICE_HOST/PORT,
 * NODE_NAME, the service account's token and CA). Returns NULL (no error) when there is no
 * Kubernetes to ask; err is set only for a malformed configuration. */
struct agt_k8s *agt_k8s_new(const struct agt_k8s_config *cfg, char *err, size_t errlen);
void agt_k8s_free(struct agt_k8s *k);
/* Fill pod_name/pod_namespace of id from the cache, refreshing it (at most every few seconds)
 * when the pod UID is not known yet. 1 when the pod is known. */
int agt_k8s_lookup(struct agt_k8s *k, struct agt_identity *id);
/* The pod's label value, or NULL (pod unknown or label absent). */
const char *agt_k8s_label(struct agt_k8s *k, const char *pod_uid, const char *key);
/* Pod list requests made and failed so far (for metrics). */
void agt_k8s_stats(const struct agt_k8s *k, uint64_t *requests, uint64_t *failures, unsigned *pods);
#endif
