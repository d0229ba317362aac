/* Filling a run's settings (struct agt_config, tracer/config.h) from the command line of
 * `agtrace attach` or from the JSON file of `agtrace run --config`. Both go through one table of
 * options: each row names the option's flag and its key in the file, how its value is checked
 * and where it is kept, and its help text; `attach --help` is printed from the same rows. */
#ifndef AGT_CLI_OPTIONS_H
#define AGT_CLI_OPTIONS_H
#include <stdio.h>
#include "tracer/config.h"

/* Defaults, and the redactor the --redact patterns go into. 0 or -ENOMEM. */
int agt_config_init(struct agt_config *c);
/* attach's arguments (argv[0] is "attach"). 0; 1 when --help was asked for (printed); or
 * -EINVAL after one sentence on stderr. */
int agt_config_argv(struct agt_config *c, int argc, char **argv);
/* run's configuration file. 0, or -EINVAL after one sentence naming the file and the JSON
 * path of what is wrong. */
int agt_config_file(struct agt_config *c, const char *path);
void agt_config_free(struct agt_config *c);
/* Set the logger as --log-level, --log-format and -v say (the commands call it once the
 * options are read; parsing never changes the logger). 0, or -EINVAL after one sentence when
 * they contradict what was given before the command. */
int agt_config_apply_logging(const struct agt_config *c);
void agt_config_usage(FILE *f);
#endif
