// SPDX-License-Identifier: MIT
/*
 * The tree's own PKRAM tmpfs mounts (amber kexec --preserve-mount DIR):
 * a VMM keeps its guest RAM in a file it maps shared; with the file on a
 * tmpfs mounted pkram=NAME, the dump saves the mapping by reference (no
 * page of it is copied), the mount is preserved beside the image store,
 * and the next kernel mounts it again at the same place before the tree
 * comes back and maps the same file.
 *
 * The store records them in kexec-mounts, one "NAME PATH" line each (not
 * an image: CRIU and crit never see it). A tmpfs with a file open for
 * writing cannot be preserved (the remount to read-only is refused while
 * a writer holds it), so these are preserved after the dumped tree is
 * gone, not while it is frozen (kexec.c).
 */
#define LOG_PREFIX "kexec-mounts: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "kexec/kexec.h"

#define MOUNTS_FILE "kexec-mounts"

int kexec_mounts_adopt(struct kexec_mounts *m, const char *const *paths)
{
	int ret;

	m->nr = 0;
	for (; paths && *paths; paths++) {
		if (m->nr == KEXEC_MOUNTS_MAX) {
			pr_err("more than %d --preserve-mount\n", KEXEC_MOUNTS_MAX);
			ret = -E2BIG;
			goto fail;
		}
		ret = kexec_store_adopt(&m->s[m->nr], *paths);
		if (ret)
			goto fail;
		for (int i = 0; i < m->nr; i++)
			if (!strcmp(m->s[i].name, m->s[m->nr].name)) {
				pr_err("two --preserve-mount with the name pkram=%s\n", m->s[i].name);
				kexec_store_close(&m->s[m->nr], false);
				ret = -EINVAL;
				goto fail;
			}
		m->nr++;
	}
	return 0;
fail:
	kexec_mounts_close(m);
	return ret;
}

int kexec_mounts_record(const struct kexec_mounts *m, int storefd, const char *store_name)
{
	cleanup_close int fd = -1;
	char line[KEXEC_NAME_MAX + PATH_MAX + 4];
	int ret = 0;

	if (!m->nr)
		return 0;
	fd = img_file_open(storefd, MOUNTS_FILE, O_WRONLY);
	if (fd < 0)
		return fd;
	for (int i = 0; i < m->nr && !ret; i++) {
		if (!strcmp(m->s[i].name, store_name)) {
			pr_err("--preserve-mount %s has the store's own name pkram=%s\n", m->s[i].dir,
			       store_name);
			return -EINVAL;
		}
		ret = write_full(fd, line, snprintf(line, sizeof(line), "%s %s\n", m->s[i].name,
						    m->s[i].dir));
	}
	if (ret)
		pr_err("can't write %s: %s\n", MOUNTS_FILE, strerror(-ret));
	return ret;
}

int kexec_mounts_preserve(struct kexec_mounts *m, unsigned long *pfn)
{
	int ret = 0;

	for (int i = 0; i < m->nr && !ret; i++)
		ret = kexec_store_preserve(&m->s[i], pfn);
	if (ret)
		kexec_mounts_unpreserve(m);
	return ret;
}

void kexec_mounts_unpreserve(struct kexec_mounts *m)
{
	for (int i = 0; i < m->nr; i++)
		if (kexec_store_unpreserve(&m->s[i]))
			pr_warn("%s stays preserved: `mount -o remount,rw %s` drops it\n",
				m->s[i].dir, m->s[i].dir);
}

int kexec_mounts_find(struct kexec_mounts *m, int storefd)
{
	cleanup_close int fd = img_file_open(storefd, MOUNTS_FILE, O_RDONLY);
	cleanup_free char *text = NULL;
	int ret = 0, lineno = 0;
	size_t len;

	m->nr = 0;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	text = read_fd_all(fd, &len);
	if (!text || strlen(text) != len || len > KEXEC_MOUNTS_MAX * (PATH_MAX + 64)) {
		pr_err("%s of the store is unreadable or damaged\n", MOUNTS_FILE);
		return -EINVAL;
	}
	for (char *l = text, *nl; *l && !ret; l = nl + 1) {
		char name[KEXEC_NAME_MAX + 1], *sp;

		lineno++;
		nl = strchr(l, '\n');
		sp = strchr(l, ' ');
		if (!nl || !sp || sp > nl || (size_t)(sp - l) > KEXEC_NAME_MAX ||
		    m->nr == KEXEC_MOUNTS_MAX) {
			pr_err("%s line %d is malformed\n", MOUNTS_FILE, lineno);
			ret = -EINVAL;
			break;
		}
		*nl = '\0';
		memcpy(name, l, sp - l);
		name[sp - l] = '\0';
		ret = kexec_store_find_at(&m->s[m->nr], name, sp + 1);
		if (!ret)
			m->nr++;
	}
	if (ret)
		kexec_mounts_close(m);
	return ret;
}

void kexec_mounts_close(struct kexec_mounts *m)
{
	for (int i = 0; i < m->nr; i++)
		kexec_store_close(&m->s[i], false);
	m->nr = 0;
}
