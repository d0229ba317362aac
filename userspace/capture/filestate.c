#define _GNU_SOURCE
#include "capture/filestate.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* path (absolute) inside pid's root, resolved there: absolute symbolic links stay inside. */
static int open_in_root(uint32_t pid, const char *path)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	char root[64];
	int dir, fd, e;

	snprintf(root, sizeof(root), "/proc/%u/root", pid);
	if ((dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	while (*path == '/')
		path++;
	fd = (int)syscall(SYS_openat2, dir, *path ? path : ".", &how, sizeof(how));
	e = errno;
	close(dir);
	return fd < 0 ? -e : fd;
}

void agt_file_state_read(void *ctx, uint32_t pid, const char *path, uint64_t hash_max,
			 size_t content_max, struct agt_file_state *st)
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int mdlen = 0;
	EVP_MD_CTX *h = NULL;
	struct stat sb;
	size_t have = 0;
	int fd, ok = 0;

	(void)ctx;
	memset(st, 0, sizeof(*st));
	fd = open_in_root(pid, path);
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ENOTDIR) {
			st->exists = 1;
			snprintf(st->note, sizeof(st->note), "unreadable: %s", strerror(-fd));
		}
		return;
	}
	st->exists = 1;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(st->note, sizeof(st->note), "not a regular file");
		goto out;
	}
	st->size = (uint64_t)sb.st_size;
	if ((uint64_t)sb.st_size > hash_max) {
		snprintf(st->note, sizeof(st->note), "over %llu bytes: not hashed",
			 (unsigned long long)hash_max);
		goto out;
	}
	if (content_max && (uint64_t)sb.st_size <= content_max)
		st->content = malloc(content_max + 1);
	if (!(h = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(h, EVP_sha256(), NULL))
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(st->note, sizeof(st->note), "unreadable: %s", strerror(errno));
			goto out;
		}
		if (!n)
			break;
		if ((uint64_t)(have + n) > hash_max) { /* it grew meanwhile */
			snprintf(st->note, sizeof(st->note), "over %llu bytes: not hashed",
				 (unsigned long long)hash_max);
			goto out;
		}
		EVP_DigestUpdate(h, buf, (size_t)n);
		if (st->content && have + n <= content_max)
			memcpy(st->content + have, buf, (size_t)n);
		else if (st->content) {
			free(st->content);
			st->content = NULL;
		}
		have += (size_t)n;
	}
	if (!EVP_DigestFinal_ex(h, md, &mdlen) || mdlen != 32)
		goto out;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(st->sha256 + 2 * i, 3, "%02x", md[i]);
	st->size = have;
	if (st->content) {
		st->content[have] = 0;
		st->content_len = have;
	}
	ok = 1;
out:
	if (!ok) {
		free(st->content);
		st->content = NULL;
		st->sha256[0] = 0;
	}
	EVP_MD_CTX_free(h);
	close(fd);
}
