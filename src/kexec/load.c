// SPDX-License-Identifier: MIT
/*
 * Loading the next kernel with kexec_file_load(2). Only the file-based
 * call: PKRAM's patch 3 makes it place segments away from preserved pages,
 * which the old kexec_load() cannot (the kernel would then refuse to
 * reboot). The next kernel must not use KASLR (its decompressor does not
 * know preserved pages), so "nokaslr" is always added.
 */
#define LOG_PREFIX "kexec-load: "
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "kexec/kexec.h"

#ifndef SYS_kexec_file_load
#define SYS_kexec_file_load 320
#endif
#define KX_KEXEC_FILE_UNLOAD	   0x1
#define KX_KEXEC_FILE_NO_INITRAMFS 0x4
/* x86's COMMAND_LINE_SIZE */
#define KX_CMDLINE_MAX 2048

int kexec_check_kernel(const char *path)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char hdr[0x210];
	uint32_t syssize;
	struct stat st;
	off_t want;

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("can't open the kernel %s", path);
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(hdr)) {
		pr_err("%s is not a kernel image (not a regular file, or too small)\n", path);
		return -ENOEXEC;
	}
	if (pread_full(fd, hdr, sizeof(hdr), 0)) {
		pr_perror("can't read %s", path);
		return -EIO;
	}
	/* the x86 boot protocol header: boot flag 0xaa55 at 0x1fe, "HdrS" at 0x202 */
	if (hdr[0x1fe] != 0x55 || hdr[0x1ff] != 0xaa || memcmp(hdr + 0x202, "HdrS", 4)) {
		pr_err("%s is not an x86 bzImage (no boot protocol header)\n", path);
		return -ENOEXEC;
	}
	/*
	 * kexec_file_load() takes a truncated bzImage as long as its setup
	 * sectors are there, and the reboot would then jump into garbage:
	 * setup sectors + syssize (16-byte units) is the file's size (more
	 * with an appended signature).
	 */
	memcpy(&syssize, hdr + 0x1f4, sizeof(syssize));
	want = ((off_t)(hdr[0x1f1] ? hdr[0x1f1] : 4) + 1) * 512 + (off_t)syssize * 16;
	if (st.st_size < want) {
		pr_err("%s is truncated: %lld bytes, its header says %lld\n", path,
		       (long long)st.st_size, (long long)want);
		return -ENOEXEC;
	}
	return 0;
}

/* Whether @tok (up to a space) is one the next kernel must not inherit. */
static bool dropped(const char *tok, size_t n)
{
	return (n >= 6 && !strncmp(tok, "pkram=", 6)) || (n == 5 && !strncmp(tok, "kaslr", 5)) ||
	       (n == 7 && !strncmp(tok, "nokaslr", 7));
}

int kexec_cmdline(char *buf, size_t len, const char *cur, const char *append, unsigned long pfn)
{
	size_t at = 0;
	int n;

	buf[0] = '\0';
	for (const char *p = cur; *p;) {
		size_t tl;

		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		tl = strcspn(p, " \n\t");
		if (!tl)
			break;
		if (!dropped(p, tl)) {
			n = snprintf(buf + at, len - at, "%s%.*s", at ? " " : "", (int)tl, p);
			if (n < 0 || (size_t)n >= len - at)
				goto too_long;
			at += n;
		}
		p += tl;
	}
	n = snprintf(buf + at, len - at, "%s%s%spkram=%lu nokaslr", at ? " " : "",
		     append ? append : "", append && *append ? " " : "", pfn);
	if (n < 0 || (size_t)n >= len - at)
		goto too_long;
	return 0;
too_long:
	pr_err("the next kernel's command line is longer than %zu bytes\n", len - 1);
	return -E2BIG;
}

int kexec_load_kernel(const char *kernel, const char *initrd, const char *append,
		      unsigned long pfn)
{
	cleanup_free char *cur = read_file_at(AT_FDCWD, "/proc/cmdline", NULL);
	cleanup_close int kfd = -1, ifd = -1;
	char cmdline[KX_CMDLINE_MAX];
	unsigned long flags = 0;
	int ret;

	if (!cur) {
		pr_perror("can't read /proc/cmdline");
		return -errno;
	}
	ret = kexec_cmdline(cmdline, sizeof(cmdline), cur, append, pfn);
	if (ret)
		return ret;
	kfd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0) {
		pr_perror("can't open the kernel %s", kernel);
		return -errno;
	}
	if (initrd) {
		ifd = open(initrd, O_RDONLY | O_CLOEXEC);
		if (ifd < 0) {
			pr_perror("can't open the initrd %s", initrd);
			return -errno;
		}
	} else {
		flags |= KX_KEXEC_FILE_NO_INITRAMFS;
	}
	pr_info("loading %s%s%s, command line: %s\n", kernel, initrd ? " + " : "",
		initrd ? initrd : "", cmdline);
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, flags)) {
		int err = errno;

		pr_err("kexec_file_load of %s failed: %s%s\n", kernel, strerror(err),
		       err == ENOEXEC ? " (not a kernel this one can load)"
		       : err == EPERM ? " (needs CAP_SYS_BOOT; or kexec is disabled: "
					"/proc/sys/kernel/kexec_load_disabled, lockdown)"
		       : err == ENOSYS ? " (no CONFIG_KEXEC_FILE)" : "");
		return -err;
	}
	return 0;
}

void kexec_unload_kernel(void)
{
	if (syscall(SYS_kexec_file_load, -1, -1, 0, NULL, KX_KEXEC_FILE_UNLOAD))
		pr_warn("can't unload the loaded kernel: %s\n", strerror(errno));
}
