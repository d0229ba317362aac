/* `agtrace attach`: the run's settings from the command line, then the run. */
#include "cli/cli.h"
#include "cli/options.h"
#include "base/log.h"
#include <errno.h>

int agt_exit_code(int rc)
{
	if (rc >= 0)
		return 0;
	return rc == -ENOMEM || rc == -EIO ? 1 : AGT_EXIT_USAGE;
}

int cmd_attach(int argc, char **argv)
{
	struct agt_config c;
	int rc;

	if ((rc = agt_config_init(&c)) == 0 && (rc = agt_config_argv(&c, argc, argv)) == 0 &&
	    (rc = agt_config_apply_logging(&c)) == 0)
		rc = agt_run(&c, argc, argv);
	agt_config_free(&c);
	return rc == 1 ? 0 : agt_exit_code(rc); /* 1: --help was printed */
}
