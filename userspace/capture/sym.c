#include "capture/sym.h"
#include <stdlib.h>

void agt_syms_free(struct agt_sym *s, int n)
{
	for (int i = 0; s && i < n; i++)
		free(s[i].name);
	free(s);
}
