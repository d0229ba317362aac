/* What agtrace build this is: the version (`git describe` at build time, else the VERSION file),
 * the commit it was built from, and the User-Agent its HTTP clients send. Generated into
 * build/skel/agt_version.h by the Makefile; these are the only names the rest of the code uses. */
#ifndef AGT_VERSION_H
#define AGT_VERSION_H

/* The ECS version the Elasticsearch documents follow (ecs.version). */
#define AGT_ECS_VERSION "8.11.0"

extern const char agt_version[];    /* "0.1.0", or "0.1.0-3-gabc1234-dirty" from git describe */
extern const char agt_revision[];   /* the commit (12 hex), "" when built outside git */
extern const char agt_user_agent[]; /* "agtrace/" agt_version */
#endif
