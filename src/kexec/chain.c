// SPDX-License-Identifier: MIT
/*
 * A chain of pre-dumps under the final dump of amber kexec, in the store.
 *
 * The pre-dumps go into directories of the store (amber pre-dump --pkram
 * NAME -D DIR), the final dump into its top, with --prev-images-dir as
 * for any dump (relative to the top). The layers are linked as usual,
 * each DIR/parent a symlink; but the kernel preserves only directories
 * and regular files, so with the tree frozen and every image written the
 * chain is folded: each layer is renamed to its child's "parent" (a real
 * directory now), top-down, and the same "parent" walk reads it after the
 * kexec. A failure before the reboot unfolds it again (names and links as
 * they were); nothing is copied either way, it is one tmpfs.
 *
 *   before:  top/parent -> pre2   pre2/parent -> ../pre1   pre1/
 *   folded:  top/parent/ (pre2)   top/parent/parent/ (pre1)
 *
 * Refused before the freeze, with the tree untouched: a layer outside the
 * store (after every symlink is followed), one nested in another, a loop,
 * a layer whose images do not match its amber.sums or whose pagemaps do
 * not match their pages files, and anything else in the store the kernel
 * would refuse to preserve (another symlink, a hard link, a FIFO, ...).
 */
#define LOG_PREFIX "kexec-chain: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "kexec/kexec.h"
#include "mem/pagemap_chain.h"

static void layer_close(struct kexec_layer *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->updirfd >= 0)
		close(l->updirfd);
	l->fd = l->updirfd = -1;
}

void kexec_chain_free(struct kexec_chain *c)
{
	for (int i = 0; i < c->nr; i++)
		layer_close(&c->l[i]);
	free(c->l);
	c->l = NULL;
	c->nr = 0;
}

/* @a and @b, relative paths: one is the other or lies in it. */
static bool nested(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), n = na < nb ? na : nb;

	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/') && (b[n] == '\0' || b[n] == '/');
}

/*
 * Layer @i: @link, relative to the directory @from (relative to the store,
 * "" for its top), resolved, inside the store, opened and checked.
 */
static int layer_open(struct kexec_chain *c, const struct kexec_store *s, int i,
		      const char *from, const char *link)
{
	struct kexec_layer *l = &c->l[i];
	char path[PATH_MAX * 2 + 2], real[PATH_MAX], up[PATH_MAX];
	size_t n = strlen(s->dir);
	int ret;

	snprintf(l->link, sizeof(l->link), "%s", link);
	if (link[0] == '/')
		snprintf(path, sizeof(path), "%s", link);
	else
		snprintf(path, sizeof(path), "%s/%s%s%s", s->dir, from, *from ? "/" : "", link);
	if (!realpath(path, real)) {
		pr_perror("parent images '%s' (relative to %s%s%s)", link, s->dir, *from ? "/" : "",
			  from);
		return -errno;
	}
	if (strncmp(real, s->dir, n) || real[n] != '/' || !real[n + 1]) {
		pr_err("parent images '%s' are %s, outside the store %s: only what is in the "
		       "store is preserved across the kexec (amber pre-dump --pkram %s -D DIR "
		       "puts a pre-dump there)\n", link, real, s->dir, s->name);
		return -EXDEV;
	}
	snprintf(l->rel, sizeof(l->rel), "%s", real + n + 1);
	for (int j = 0; j < i; j++)
		if (nested(l->rel, c->l[j].rel)) {
			pr_err("parent images %s and %s: %s\n", c->l[j].rel, l->rel,
			       strcmp(l->rel, c->l[j].rel) ? "one lies in the other" : "a loop");
			return -ELOOP;
		}
	l->fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* realpath() gave no trailing slash: the last '/' splits it */
	snprintf(l->base, sizeof(l->base), "%s", strrchr(real, '/') + 1);
	snprintf(up, sizeof(up), "%.*s", (int)(strrchr(real, '/') - real), real);
	l->updirfd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0 || l->updirfd < 0) {
		pr_perror("can't open the parent images %s", real);
		return -errno;
	}
	ret = kexec_verify(l->fd, false);
	if (ret) {
		pr_err("parent images %s refused: nothing was frozen\n", l->rel);
		return ret;
	}
	return 0;
}

/* The store's entries the kernel would refuse to preserve, other than the chain's links. */
static int scan(const struct kexec_chain *c, int dirfd, const char *rel, int depth)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int ret = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		pr_perror("can't list %s of the store", *rel ? rel : "the top");
		return -errno;
	}
	while (!ret && (de = readdir(d))) {
		char path[PATH_MAX];
		bool link_ok = false;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			pr_perror("can't stat %s in the store", path);
			ret = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
							    O_CLOEXEC);

			if (sub < 0 || depth > 32) {
				pr_err("can't walk %s in the store\n", path);
				ret = sub < 0 ? -errno : -ELOOP;
			} else {
				ret = scan(c, sub, path, depth + 1);
			}
			if (sub >= 0)
				close(sub);
			continue;
		}
		if (!*rel) {
			pr_err("the store's top holds %s: the final dump goes there, and it must "
			       "hold only the pre-dumps' directories (a store of an earlier "
			       "run?)\n", path);
			ret = -EEXIST;
			break;
		}
		for (int i = 0; i + 1 < c->nr && !link_ok; i++)
			link_ok = S_ISLNK(st.st_mode) && !strcmp(de->d_name, "parent") &&
				  !strcmp(rel, c->l[i].rel);
		if (link_ok || (S_ISREG(st.st_mode) && st.st_nlink == 1))
			continue;
		pr_err("%s in the store: %s, which the kernel does not preserve (only "
		       "directories and regular files, no links but the chain's own)\n", path,
		       S_ISLNK(st.st_mode) ? "a symlink" : S_ISREG(st.st_mode) ? "a hard link" :
		       "not a file");
		ret = -EINVAL;
	}
	closedir(d);
	return ret;
}

int kexec_chain_check(struct kexec_chain *c, const struct kexec_store *s, const char *prev)
{
	char link[PATH_MAX];
	int ret = 0;

	c->nr = 0;
	c->l = calloc(KEXEC_CHAIN_MAX, sizeof(*c->l));
	if (!c->l)
		return -ENOMEM;
	snprintf(link, sizeof(link), "%s", prev);
	for (;;) {
		struct kexec_layer *l = &c->l[c->nr];
		const char *from = c->nr ? c->l[c->nr - 1].rel : "";
		ssize_t n;

		if (c->nr == KEXEC_CHAIN_MAX) {
			pr_err("more than %d parent images\n", KEXEC_CHAIN_MAX);
			ret = -ELOOP;
			break;
		}
		l->fd = l->updirfd = -1;
		c->nr++;
		ret = layer_open(c, s, c->nr - 1, from, link);
		if (ret)
			break;
		n = readlinkat(l->fd, "parent", link, sizeof(link) - 1);
		if (n < 0 && errno == ENOENT)
			break; /* the first pre-dump */
		if (n < 0) {
			pr_err("%s/parent in the store is %s: it must be the link that "
			       "--prev-images-dir made\n", l->rel,
			       errno == EINVAL ? "not a link" : strerror(errno));
			ret = -EINVAL;
			break;
		}
		link[n] = '\0';
	}
	if (!ret)
		ret = scan(c, s->dirfd, "", 0);
	if (ret) {
		kexec_chain_free(c);
		return ret;
	}
	for (int i = 0; i < c->nr; i++)
		pr_info("parent image %d: %s (linked as '%s')\n", i + 1, c->l[i].rel, c->l[i].link);
	return 0;
}

int kexec_chain_recheck(const struct kexec_chain *c)
{
	for (int i = 0; i < c->nr; i++) {
		int ret = kexec_verify(c->l[i].fd, false);

		if (ret) {
			pr_err("parent images %s changed since amber kexec began: refused\n",
			       c->l[i].rel);
			return ret;
		}
	}
	return 0;
}

/* Layer @i's new place: its child's directory ("parent" in it). */
static int child_fd(const struct kexec_chain *c, int storefd, int i)
{
	return i ? c->l[i - 1].fd : storefd;
}

void kexec_chain_unfold(struct kexec_chain *c, int storefd)
{
	for (int i = c->folded - 1; i >= 0; i--) {
		const struct kexec_layer *l = &c->l[i];
		int to = child_fd(c, storefd, i);

		if (renameat(to, "parent", l->updirfd, l->base) ||
		    symlinkat(l->link, to, "parent"))
			pr_perror("can't put the parent images %s back where they were", l->rel);
	}
	if (c->folded)
		pr_info("chain of %d parent image(s) unfolded, as it was\n", c->folded);
	c->folded = 0;
}

int kexec_chain_fold(struct kexec_chain *c, int storefd)
{
	if (!c->nr)
		return 0;
	for (int i = 0; i < c->nr; i++) {
		const struct kexec_layer *l = &c->l[i];
		int to = child_fd(c, storefd, i);

		if (unlinkat(to, "parent", 0) || renameat(l->updirfd, l->base, to, "parent")) {
			int err = -errno;

			pr_perror("can't fold the parent images %s into the chain", l->rel);
			/* the link of this one, if it went: the unfold restores the others */
			symlinkat(l->link, to, "parent");
			kexec_chain_unfold(c, storefd);
			return err;
		}
		c->folded = i + 1;
	}
	pr_info("chain of %d parent image(s) folded under the top\n", c->nr);
	return 0;
}

int kexec_verify_chain(int dirfd, bool deep)
{
	int cur = dirfd, ret = kexec_verify(dirfd, deep), depth = 0;

	while (!ret) {
		int up = openat(cur, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (up < 0) {
			if (errno != ENOENT) {
				pr_perror("can't open the parent images (layer %d)", depth + 1);
				ret = -errno;
			}
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = up;
		if (++depth >= PM_MAX_CHAIN) {
			pr_err("more than %d parent images: a loop?\n", PM_MAX_CHAIN);
			ret = -ELOOP;
			break;
		}
		ret = kexec_verify(cur, deep);
		if (ret)
			pr_err("parent images (layer %d) refused\n", depth);
	}
	if (cur != dirfd)
		close(cur);
	if (!ret && depth)
		pr_info("chain verified: the top and %d parent image set(s)\n", depth);
	return ret;
}
