/* Container and pod identity from /proc/PID/cgroup texts as each runtime and cgroup driver
 * writes them, and target selectors: parsing, escapes, errors and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "capture/container.h"
#include "capture/select.h"
#include "capture/target.h"

#define ID64 "4f3c2b1a00112233445566778899aabbccddeeff00112233445566778899aabb"

static void parse(const char *text, struct agt_identity *id)
{
	memset(id, 0, sizeof(*id));
	agt_identity_parse_cgroup(text, id);
}

static void systemd_driver_containerd(void **state)
{
	struct agt_identity id;

	(void)state;
	parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	      "7e1d1b6a_52f3_4a5e_9c1d_0a1b2c3d4e5f.slice/cri-containerd-" ID64 ".scope\n",
	      &id);
	assert_string_equal(id.pod_uid, "7e1d1b6a-52f3-4a5e-9c1d-0a1b2c3d4e5f");
	assert_string_equal(id.container_id, ID64);
	assert_string_equal(id.runtime, "containerd");
	assert_string_equal(id.cgroup,
			    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-"
			    "pod7e1d1b6a_52f3_4a5e_9c1d_0a1b2c3d4e5f.slice/"
			    "cri-containerd-" ID64 ".scope");
}

static void cgroupfs_driver_v1(void **state)
{
	struct agt_identity id;

	(void)state;
	parse("12:pids:/kubepods/besteffort/pod0a1b2c3d-0000-4000-8000-00000000000a/" ID64 "\n"
	      "11:memory:/kubepods/besteffort/pod0a1b2c3d-0000-4000-8000-00000000000a/" ID64 "\n"
	      "0::/\n",
	      &id);
	assert_string_equal(id.pod_uid, "0a1b2c3d-0000-4000-8000-00000000000a");
	assert_string_equal(id.container_id, ID64);
	assert_string_equal(id.runtime, "");
	assert_string_equal(id.cgroup,
			    "/kubepods/besteffort/pod0a1b2c3d-0000-4000-8000-00000000000a/" ID64);
}

static void docker_and_crio_and_podman(void **state)
{
	struct agt_identity id;

	(void)state;
	parse("0::/system.slice/docker-" ID64 ".scope\n", &id);
	assert_string_equal(id.container_id, ID64);
	assert_string_equal(id.runtime, "docker");
	assert_string_equal(id.pod_uid, "");
	parse("4:memory:/docker/" ID64 "\n", &id);
	assert_string_equal(id.container_id, ID64);
	assert_string_equal(id.runtime, "docker");
	parse("0::/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice/crio-" ID64
	      ".scope",
	      &id);
	assert_string_equal(id.runtime, "cri-o");
	assert_string_equal(id.pod_uid, "11111111-2222-3333-4444-555555555555");
	parse("0::/machine.slice/libpod-" ID64 ".scope/container\n", &id);
	assert_string_equal(id.container_id, ID64); /* one level above the process's cgroup */
	assert_string_equal(id.runtime, "podman");
}

static void host_processes_have_no_identity(void **state)
{
	struct agt_identity id;

	(void)state;
	parse("0::/user.slice/user-0.slice/session-3.scope\n", &id);
	assert_string_equal(id.container_id, "");
	assert_string_equal(id.pod_uid, "");
	assert_string_equal(id.cgroup, "/user.slice/user-0.slice/session-3.scope");
	/* 32 hex digits are not a container id; "pod" followed by no UUID is not a pod. */
	parse("4:memory:/process_api/606c1e048cc57693c236aeb4d652b662\n0::/podman-helper\n", &id);
	assert_string_equal(id.container_id, "");
	assert_string_equal(id.pod_uid, "");
	assert_string_equal(id.cgroup, "/podman-helper");
	parse("", &id);
	assert_string_equal(id.cgroup, "");
	parse("garbage without colons\n1:x\n", &id);
	assert_string_equal(id.cgroup, "");
}

static void selector_parse_and_errors(void **state)
{
	struct agt_selector s;
	char err[512];

	(void)state;
	assert_int_equal(agt_selector_parse("comm=python3*,cmdline=*a\\,b*,label.app=bot,"
					    "namespace=ai",
					    &s, err, sizeof(err)),
			 0);
	assert_string_equal(s.comm, "python3*");
	assert_string_equal(s.cmdline, "*a,b*");
	assert_string_equal(s.ns, "ai");
	assert_int_equal(s.nlabels, 1);
	assert_string_equal(s.label_key[0], "app");
	assert_string_equal(s.label_val[0], "bot");
	assert_true(agt_selector_needs_k8s(&s));
	agt_selector_free(&s);

	assert_int_equal(agt_selector_parse("com=python3", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "selector \"com=python3\": unknown key \"com\"; keys are exe, "
				 "comm, cmdline, cgroup, container, namespace, pod and label.NAME");
	assert_int_equal(agt_selector_parse("comm", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "selector \"comm\": \"comm\" is not KEY=PATTERN; keys are exe, "
				 "comm, cmdline, cgroup, container, namespace, pod and label.NAME");
	assert_int_equal(agt_selector_parse("comm=a,comm=b", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "selector \"comm=a,comm=b\": \"comm\" is given twice");
	assert_int_equal(agt_selector_parse("", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "an empty selector would trace every process; give at least one "
				 "condition such as comm=python3");
}

static void selector_matching(void **state)
{
	struct agt_selector s;
	struct agt_proc_info p;
	char err[256];

	(void)state;
	memset(&p, 0, sizeof(p));
	strcpy(p.comm, "python3.11");
	strcpy(p.exe, "/usr/bin/python3.11");
	assert_int_equal(
	    agt_selector_parse("exe=*/python3*,cmdline=*agent.py*", &s, err, sizeof(err)), 0);
	assert_true(agt_selector_match(&s, &p, "python3 /srv/agent.py --x", NULL));
	assert_false(agt_selector_match(&s, &p, "python3 /srv/other.py", NULL));
	agt_selector_free(&s);

	assert_int_equal(agt_selector_parse("container=*", &s, err, sizeof(err)), 0);
	assert_false(agt_selector_match(&s, &p, "", NULL)); /* not in a container */
	strcpy(p.id.container_id, ID64);
	assert_true(agt_selector_match(&s, &p, "", NULL));
	agt_selector_free(&s);

	/* Pod conditions need the pod's metadata: without it nothing matches. */
	assert_int_equal(agt_selector_parse("namespace=ai", &s, err, sizeof(err)), 0);
	assert_false(agt_selector_match(&s, &p, "", NULL));
	strcpy(p.id.pod_uid, "11111111-2222-3333-4444-555555555555");
	strcpy(p.id.pod_name, "bot-1");
	strcpy(p.id.pod_namespace, "ai");
	assert_true(agt_selector_match(&s, &p, "", NULL));
	strcpy(p.id.pod_namespace, "default");
	assert_false(agt_selector_match(&s, &p, "", NULL));
	agt_selector_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(systemd_driver_containerd),
	    cmocka_unit_test(cgroupfs_driver_v1),
	    cmocka_unit_test(docker_and_crio_and_podman),
	    cmocka_unit_test(host_processes_have_no_identity),
	    cmocka_unit_test(selector_parse_and_errors),
	    cmocka_unit_test(selector_matching),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
