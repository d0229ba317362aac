#include "capture/runtime.h"
#include "capture/elfsym.h"
#include "capture/gopclntab.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agt_rt_go_covered(const char *path, char *ver, size_t n)
{
	unsigned major = 0, minor = 0;

	if (agt_go_version(path, ver, n))
		return -1;
	if (sscanf(ver, "go%u.%u", &major, &minor) != 2)
		return 0; /* a development build ("devel +abc"): no version to check */
	return major == 1 && minor >= AGT_RT_GO_MIN_MINOR && minor <= AGT_RT_GO_MAX_MINOR;
}

int agt_rt_has_libuv(const char *path)
{
	struct agt_sym *syms;
	char err[256];
	int n;

	if (agt_elf_find_funcs(path, "uv_run", &syms, &n, err, sizeof(err)))
		return 0;
	agt_syms_free(syms, n);
	return 1;
}
