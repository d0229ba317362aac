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
	/* The workload that owns the pod (from its ownerReferences; a ReplicaSet's Deployment
	 * through the ReplicaSet): Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet;
	 * "" when the pod has none (or it is not known yet). */
	char owner_kind[16];
	char owner_name[254];
	char replicaset[254];	 /* a Deployment's pod: the ReplicaSet between them */
	char container_name[254]; /* the pod's container this process runs in, when listed */
	char service_name[254];	  /* the pod's resource.opentelemetry.io/service.name annotation */
	char node_name[254];	  /* the pod's spec.nodeName */
};
#endif
