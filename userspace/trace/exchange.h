/* HTTP exchanges become spans: an LLM API call is a reasoning_step, with a decision child
 * when the model chose tools and an error child when the API said no; anything else is a
 * plain HTTP span. */
#ifndef AGT_EXCHANGE_H
#define AGT_EXCHANGE_H
#include "core/pipeline.h"

/* Takes ownership of req and resp (resp may be NULL: the response never came). */
void agt_exchange_emit(struct agt_pipeline *p, const struct agt_proc *proc,
		       struct agt_http_msg *req, struct agt_http_msg *resp);
#endif
