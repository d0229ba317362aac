/* Probe links destroyed off the event loop: closing a uprobe's perf event waits for the kernel
 * to unregister it (an RCU grace period, tens of milliseconds on these machines), and a target
 * has a dozen links; meanwhile new processes must still be discovered as they exec. */
#ifndef AGT_REAPER_H
#define AGT_REAPER_H
struct bpf_link;
struct agt_reaper;

struct agt_reaper *agt_reaper_start(void);
/* Queue a link for destruction (destroyed at once when there is no reaper). */
void agt_reaper_push(struct agt_reaper *r, struct bpf_link *l);
/* Destroy what is queued, then stop the thread. */
void agt_reaper_stop(struct agt_reaper *r);
/* Destroy n links at once, from several threads: each destroy waits for the kernel to
 * unregister its uprobe, and waits that overlap end together. */
void agt_links_destroy(struct bpf_link **links, int n);
#endif
