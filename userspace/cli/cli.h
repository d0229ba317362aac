/* The commands of the agtrace binary: a table of commands, some of them with a table of their
 * own (`probes list|check`, `sample show|set`, `audit verify`), as bpftool does; cli/main.c walks
 * it. A command gets argv from its own name on and returns the process exit code: 0, 2 for
 * anything the user can fix (one sentence on stderr says what), 1 for the rest. Inside, code
 * returns negative errno; only a command turns that into an exit code. */
#ifndef AGT_CLI_H
#define AGT_CLI_H
#include <stdio.h>

struct agt_cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* a command that runs; NULL for a group */
	const char *help;		  /* one line for the table's listing */
	const struct agt_cmd *sub;	  /* a group's commands, ended by a row without a name */
	void (*usage)(FILE *f);		  /* a group's own --help; NULL: the listing */
};

int cmd_check(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_probes_list(int argc, char **argv);
int cmd_probes_check(int argc, char **argv);
int cmd_probes_locate(int argc, char **argv);
void cmd_probes_usage(FILE *f);
int cmd_sample_show(int argc, char **argv);
int cmd_sample_set(int argc, char **argv);
void cmd_sample_usage(FILE *f);
int cmd_audit_verify(int argc, char **argv);
void cmd_audit_usage(FILE *f);
int cmd_version(int argc, char **argv);
void agt_print_version(FILE *f);

/* A command's exit code for what the code inside returned: 0 for 0 (or more); 1 for -ENOMEM and
 * -EIO (resources, lost writes); 2 for any other -errno (what the user can fix; the sentence was
 * printed). */
int agt_exit_code(int rc);
#endif
