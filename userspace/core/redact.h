/* Secrets never leave the node: credentials in anything emitted are replaced by [REDACTED]. */
#ifndef AGT_REDACT_H
#define AGT_REDACT_H
#include <stddef.h>

/* Add a pattern (POSIX extended regex); the whole match is redacted. 0 or -EINVAL with err. */
int agt_redact_add(const char *regex, char *err, size_t errlen);
/* A redacted copy of s (caller frees); NULL for NULL. */
char *agt_redact(const char *s);
void agt_redact_reset(void);
#endif
