/* Integration-test target: known nested calls, driven line by line over stdin so a test can
 * attach first and then make exactly the calls it asserts on.
 *   outer N     outer(N) -> middle(N) -> leaf(N,"a"), leaf(N+1,"b"); prints the result
 *   multi N     multi_ret(N): several return paths (a Go-style return-instruction test)
 *   recurse N   recurse(N): N+1 nested calls
 *   jump        catcher() -> thrower() which longjmps out: thrower never returns
 *   thread      a thread calls thread_body(), which calls pthread_exit inside it
 *   sleep MS    napper(MS): a call still open while the test stops the tracer
 *   quit / EOF  exit 0;  exit N: exit with code N */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

volatile int sink;
static jmp_buf env;

NOINLINE int leaf(int n, const char *label)
{
	sink += label[0];
	return n * 2;
}

NOINLINE int middle(int n)
{
	return leaf(n, "a") + leaf(n + 1, "b");
}

NOINLINE int outer(int n)
{
	return middle(n) + 1;
}

NOINLINE long multi_ret(long n)
{
	/* Early returns before the frame is set up (shrink-wrapping) give several ret
	 * instructions; the test checks there is more than one. */
	if (n < 0)
		return -1;
	if (n == 0)
		return 100;
	long r = leaf((int)n, "m");
	sink += (int)r;
	return n * 10;
}

NOINLINE int recurse(int n)
{
	if (n <= 0)
		return 0;
	return 1 + recurse(n - 1);
}

NOINLINE void thrower(int code)
{
	sink++;
	longjmp(env, code);
}

NOINLINE int catcher(void)
{
	if (setjmp(env))
		return 7;
	thrower(1);
	return 0;
}

NOINLINE void thread_body(int n)
{
	sink += n;
	pthread_exit(NULL);
}

NOINLINE int napper(int ms)
{
	usleep((useconds_t)ms * 1000);
	return ms;
}

static void *thread_main(void *arg)
{
	thread_body((int)(long)arg);
	return NULL;
}

int main(void)
{
	char line[128];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		char cmd[32];
		long n = 0;

		if (sscanf(line, "%31s %ld", cmd, &n) < 1)
			continue;
		if (!strcmp(cmd, "outer"))
			printf("outer %d\n", outer((int)n));
		else if (!strcmp(cmd, "multi"))
			printf("multi %ld\n", multi_ret(n));
		else if (!strcmp(cmd, "recurse"))
			printf("recurse %d\n", recurse((int)n));
		else if (!strcmp(cmd, "sleep"))
			printf("slept %d\n", napper((int)n));
		else if (!strcmp(cmd, "jump"))
			printf("jump %d\n", catcher());
		else if (!strcmp(cmd, "thread")) {
			pthread_t t;

			pthread_create(&t, NULL, thread_main, (void *)n);
			pthread_join(t, NULL);
			printf("thread done\n");
		} else if (!strcmp(cmd, "exit"))
			exit((int)n);
		else if (!strcmp(cmd, "quit"))
			break;
		else
			printf("unknown %s\n", cmd);
	}
	return 0;
}
