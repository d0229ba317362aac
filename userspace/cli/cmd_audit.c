/* `agtrace audit verify [--key FILE] [--anchor RECORDS:HEAD] TRAIL`: check an audit trail
 * written with `attach --audit` (export/audit.c verifies; this prints what it found). Exit 0
 * when the trail is intact, 2 when it is not or the input is bad, one sentence per finding. */
#include "base/log.h"
#include "export/audit.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cmd_audit_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: agtrace audit verify [--key FILE] [--anchor RECORDS:HEAD] TRAIL...\n"
	    "\n"
	    "Checks an audit trail written with `agtrace attach --audit TRAIL`. Every record "
	    "carries a\n"
	    "digest of the record before it and of its own content, so the first record that was\n"
	    "changed, removed or reordered is named. The trail is intact when every record "
	    "verifies,\n"
	    "it ends in the seal a clean shutdown writes, it records no gap (records agtrace "
	    "could\n"
	    "not write, a torn last line cut at restart, a run that did not end cleanly) and the\n"
	    "anchor, if given, is in it.\n"
	    "\n"
	    "A trail rotated with --audit-max-bytes or --audit-max-age is verified as one: give\n"
	    "its files oldest first (TRAIL.1 TRAIL.2 ... TRAIL). Each rotated file ends in a\n"
	    "rotate record and the next starts with a continue record that goes on with the\n"
	    "chain. When the oldest files were removed (--audit-keep-bytes), the chain is\n"
	    "checked from the first record given.\n"
	    "\n"
	    "  --key FILE             the HMAC key the trail was written with (--audit-key):\n"
	    "                         every record's HMAC-SHA256 is checked, so a forged or\n"
	    "                         re-hashed record is found. Without a key a trail is a plain\n"
	    "                         SHA-256 chain, which finds accidental damage but not "
	    "forgery.\n"
	    "                         Create a key once: head -c 32 /dev/urandom > KEY; chmod 600 "
	    "KEY\n"
	    "  --anchor RECORDS:HEAD  a checkpoint's or the seal's anchor, kept off the host\n"
	    "                         (the run hands each one out): records cut from the trail\n"
	    "                         or rewritten up to it are found\n"
	    "\n"
	    "Exit 0 when the trail is intact, 2 otherwise (each finding in one sentence).\n");
}

/* A trail is a file (or a pipe); a device would be read forever. */
static FILE *open_trail(const char *path)
{
	FILE *f = fopen(path, "re");
	struct stat st;

	if (!f) {
		agt_err("cannot read audit trail %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
		agt_err("cannot read audit trail %s: it is not a regular file", path);
		fclose(f);
		return NULL;
	}
	return f;
}

static int print_report(const char *const *names, const struct agt_audit_report *r)
{
	const char *path = names[r->files - 1], *at = names[r->break_file];

	if (r->empty) {
		agt_err("%s: the trail is empty: it has no record, not even the run's "
			"configuration, so it cannot be intact (it was emptied, or never written)",
			path);
		return AGT_EXIT_USAGE;
	}
	if (r->key_needed) {
		agt_err("%s: the trail is keyed (HMAC-SHA256): give its key with --key FILE to "
			"verify it",
			names[0]);
		return AGT_EXIT_USAGE;
	}
	if (r->broken) {
		agt_err("%s: line %llu (record %llu) %s", at, (unsigned long long)r->break_line,
			(unsigned long long)r->break_record, r->why);
		return AGT_EXIT_USAGE;
	}
	if (r->files > 1)
		printf("%s: %d files, %llu records, chain %s, %s%s\n", path, r->files,
		       (unsigned long long)r->records, r->intact ? "intact" : "unbroken",
		       r->sealed    ? "sealed"
		       : r->rotated ? "rotated"
				    : "not sealed",
		       r->gaps ? ", gaps recorded" : "");
	else if (r->intact)
		printf("%s: %llu records, chain intact, %s\n", path, (unsigned long long)r->records,
		       r->sealed ? "sealed" : "rotated");
	else
		printf("%s: %llu records, chain unbroken, %s%s\n", path,
		       (unsigned long long)r->records, r->sealed ? "sealed" : "not sealed",
		       r->gaps ? ", gaps recorded" : "");
	if (r->first_seq)
		printf("%s: starts at record %llu, continuing %s (not given): the records before "
		       "it are not checked\n",
		       names[0], (unsigned long long)r->first_seq,
		       r->first_from[0] ? r->first_from : "an earlier file");
	if (r->rotated)
		printf("%s: ends in a rotate record: the trail goes on in %s (not given)\n", path,
		       r->next_file[0] ? r->next_file : "a later file");
	if (r->keyed)
		printf("%s: keyed: every record's HMAC-SHA256 verifies with the key\n", path);
	else
		printf("%s: unkeyed: a SHA-256 chain detects accidental damage, not forgery "
		       "(anyone can recompute it); write trails with --audit-key\n",
		       path);
	if (r->anchor_given && !r->anchor_missing && !r->anchor_mismatch && !r->anchor_before)
		printf("%s: anchor found: record %llu is the anchored one, %llu records after it\n",
		       path, (unsigned long long)(r->anchor_records - 1),
		       (unsigned long long)(r->records - r->anchor_records));
	if (r->torn_line)
		agt_err("%s: line %llu is torn: its %llu bytes end without a newline (a write cut "
			"short); the next `agtrace attach --audit` on this trail cuts it and "
			"records a gap",
			names[r->torn_file], (unsigned long long)r->torn_line,
			(unsigned long long)r->torn_bytes);
	if (r->gaps)
		agt_err("%s: %llu gap%s recorded, the first at record %llu: %s", path,
			(unsigned long long)r->gaps, r->gaps == 1 ? "" : "s",
			(unsigned long long)r->first_gap_seq, r->first_gap);
	if (!r->sealed && !r->rotated)
		agt_err("%s: not sealed (the run did not end cleanly, or the tail was cut)", path);
	if (r->anchor_missing)
		agt_err("%s: truncated: the anchor names %llu records but the trail has %llu, so "
			"at least %llu record%s cut",
			path, (unsigned long long)r->anchor_records, (unsigned long long)r->records,
			(unsigned long long)(r->anchor_records - r->records),
			r->anchor_records - r->records == 1 ? " was" : "s were");
	if (r->anchor_before)
		agt_err("%s: the anchored record %llu is before record %llu, where the files "
			"given start: give the earlier files too",
			names[0], (unsigned long long)(r->anchor_records - 1),
			(unsigned long long)r->first_seq);
	if (r->anchor_mismatch)
		agt_err("%s: record %llu is not the anchored one: the trail was rewritten since "
			"the anchor",
			path, (unsigned long long)(r->anchor_records - 1));
	return r->intact ? 0 : AGT_EXIT_USAGE;
}

int cmd_audit_verify(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"anchor", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct agt_audit_key key;
	struct agt_audit_anchor_ref anchor;
	struct agt_audit_report rep;
	const char *key_file = NULL, *anchor_arg = NULL, *const * paths;
	char err[512];
	FILE **fs;
	int c, rc, n;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 'a': anchor_arg = optarg; break;
		case 'h': cmd_audit_usage(stdout); return 0;
		case ':':
			agt_err("option %s needs a value; see `agtrace audit --help`",
				argv[optind - 1]);
			return AGT_EXIT_USAGE;
		default:
			agt_err("unknown option \"%s\"; see `agtrace audit --help`", argv[optind - 1]);
			return AGT_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		agt_err("audit verify needs a TRAIL: agtrace audit verify [--key FILE] [--anchor "
			"RECORDS:HEAD] TRAIL... (a rotated trail's files oldest first)");
		return AGT_EXIT_USAGE;
	}
	paths = (const char *const *)argv + optind;
	n = argc - optind;
	if (anchor_arg && agt_audit_anchor_parse(anchor_arg, &anchor)) {
		agt_err("--anchor needs RECORDS:HEAD as a checkpoint gives it (a count from 1, a "
			"colon, 64 hex digits), got \"%s\"",
			anchor_arg);
		return AGT_EXIT_USAGE;
	}
	if (key_file && agt_audit_key_load(key_file, 0, &key, err, sizeof(err))) {
		agt_err("%s", err);
		return AGT_EXIT_USAGE;
	}
	if (!(fs = calloc((size_t)n, sizeof(*fs)))) {
		rc = AGT_EXIT_USAGE;
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!(fs[i] = open_trail(paths[i]))) {
			rc = AGT_EXIT_USAGE;
			goto out;
		}
	rc = agt_audit_verify_files(fs, n, key_file ? &key : NULL, anchor_arg ? &anchor : NULL,
				    &rep, err, sizeof(err));
	if (rc) {
		agt_err("cannot read audit trail %s: %s", paths[n - 1], strerror(-rc));
		rc = AGT_EXIT_USAGE;
		goto out;
	}
	rc = print_report(paths, &rep);
out:
	for (int i = 0; fs && i < n; i++)
		if (fs[i])
			fclose(fs[i]);
	free(fs);
	if (key_file)
		agt_audit_key_clear(&key);
	return rc;
}
