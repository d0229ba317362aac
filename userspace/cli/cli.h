/* The commands of the agtrace binary (cli/main.c dispatches to them). Each returns the process
 * exit code: 0, 2 for anything the user can fix (one sentence on stderr says what), 1 for the
 * rest. Inside, code returns negative errno; only a command turns that into an exit code. */
#ifndef AGT_CLI_H
#define AGT_CLI_H
int cmd_check(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_probes(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* A command's exit code for what the code inside returned: 0 for 0 (or more); 1 for -ENOMEM and
 * -EIO (resources, lost writes); 2 for any other -errno (what the user can fix; the sentence was
 * printed). */
int agt_exit_code(int rc);
#endif
