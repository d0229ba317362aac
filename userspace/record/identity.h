/* Who a process is beyond its PID: its container and Kubernetes pod. Filled by capture/container.c
 * from the cgroup path and the pod list; read by everything that shows a process. */
#ifndef AGT_IDENTITY_H
#define AGT_IDENTITY_H

struct agt_identity {
	char cgroup[512];	/* the unified (v2) path, else the first non-root one */
	char container_id[65];	/* 64 hex; "" outside containers */
	char runtime[16];	/* docker, containerd, cri-o, podman; "" when unknown */
	char pod_uid[37];	/* canonical 8-4-4-4-12 form; "" outside Kubernetes */
	char pod_name[254];	/* from the pod list; "" until known */
	char pod_namespace[64]; /* from the pod list; "" until known */
	char workload_name[254]; /* the pod's owner (Deployment through its ReplicaSet,
				  * StatefulSet, DaemonSet, Job, ...), from the owner lookup; ""
				  * until known */
};
#endif
