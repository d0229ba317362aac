#include "capture/reaper.h"
#include <bpf/libbpf.h>
#include <pthread.h>
#include <stdlib.h>

struct agt_reaper {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct bpf_link **q;
	int n, cap, stopping;
};

#define DESTROY_THREADS 16

struct slice {
	struct bpf_link **links;
	int n;
};

static void *destroy_slice(void *arg)
{
	struct slice *s = arg;

	for (int i = 0; i < s->n; i++)
		bpf_link__destroy(s->links[i]);
	return NULL;
}

void agt_links_destroy(struct bpf_link **links, int n)
{
	struct slice sl[DESTROY_THREADS];
	pthread_t th[DESTROY_THREADS];
	int nth = n < DESTROY_THREADS ? n : DESTROY_THREADS, started[DESTROY_THREADS] = {0};

	for (int i = 0, at = 0; i < nth; i++) {
		sl[i].links = links + at;
		sl[i].n = n / nth + (i < n % nth);
		at += sl[i].n;
		started[i] = !pthread_create(&th[i], NULL, destroy_slice, &sl[i]);
		if (!started[i])
			destroy_slice(&sl[i]);
	}
	for (int i = 0; i < nth; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

static void *run(void *arg)
{
	struct agt_reaper *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->n && !r->stopping)
			pthread_cond_wait(&r->wake, &r->lock);
		if (!r->n)
			break; /* stopping, and nothing left */
		/* Everything queued at once: the destroys' waits overlap. */
		struct bpf_link **q = r->q;
		int n = r->n;

		r->q = NULL;
		r->n = r->cap = 0;
		pthread_mutex_unlock(&r->lock);
		agt_links_destroy(q, n);
		free(q);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct agt_reaper *agt_reaper_start(void)
{
	struct agt_reaper *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	if (pthread_create(&r->th, NULL, run, r)) {
		free(r);
		return NULL;
	}
	return r;
}

void agt_reaper_push(struct agt_reaper *r, struct bpf_link *l)
{
	if (!r) {
		bpf_link__destroy(l);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		int cap = r->cap ? 2 * r->cap : 64;
		struct bpf_link **q = realloc(r->q, cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&r->lock);
			bpf_link__destroy(l);
			return;
		}
		r->q = q;
		r->cap = cap;
	}
	r->q[r->n++] = l;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

void agt_reaper_stop(struct agt_reaper *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->th, NULL);
	free(r->q);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
