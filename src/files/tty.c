// SPDX-License-Identifier: MIT
/*
 * Terminals. A pty pair whose master is in the tree is saved whole
 * (pty.c); the console and the virtual terminals are saved as devices
 * opened again at restore (tty_dev.c). Any other terminal (a pty slave
 * whose master is outside, /dev/tty, a serial line) is the shell's, with
 * --shell-job only: the tty's settings (termios, window size, session and
 * group) go once per device to tty-info.img, each open description to
 * files.img. On restore that terminal is the restoring amber's own: each
 * of its tty files is a new description of it, made before fork; so is a
 * VT restored with --shell-job, as CRIU does. A pty slave whose master was
 * the caller's (orphan_pts_master) gets a new pair instead (pty.c).
 */
#define LOG_PREFIX "tty: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "tty.pb-c.h"

/* ---- dump ---- */

static bool is_tty(dev_t rdev)
{
	unsigned int ma = major(rdev);

	return ma == 4 || ma == 5 || (ma >= 136 && ma <= 143);
}

static TtyType tty_type(dev_t rdev)
{
	unsigned int ma = major(rdev), mi = minor(rdev);

	if (ma >= 136 && ma <= 143)
		return TTY_TYPE__PTY;
	if (ma == 4)
		return mi < 64 ? TTY_TYPE__VT : TTY_TYPE__SERIAL;
	return mi == 0 ? TTY_TYPE__CTTY : TTY_TYPE__CONSOLE;
}

static int dump_tty_info(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t info_id)
{
	TtyInfoEntry ti = TTY_INFO_ENTRY__INIT;
	TermiosEntry te = TERMIOS_ENTRY__INIT;
	WinsizeEntry we = WINSIZE_ENTRY__INIT;
	TtyPtyEntry pty = TTY_PTY_ENTRY__INIT;
	uint32_t cc[TTY_NCC];
	struct termios t;
	struct winsize ws;
	int fd = files_peekfd(d);
	int ret = files_get_img(fc, &fc->st->tty_info, IMG_TTY_INFO);

	if (ret)
		return ret;
	ti.id = info_id;
	ti.type = tty_type(d->st.st_rdev);
	ti.sid = fd_ns_pid(d, getsid(d->pid));
	ti.pgrp = fd_ns_pid(d, getpgid(d->pid));
	files_tty_info_device(&ti, d);
	if (ti.type == TTY_TYPE__PTY) {
		pty.index = minor(d->st.st_rdev) + (major(d->st.st_rdev) - 136) * 256;
		ti.pty = &pty;
	}
	if (fd >= 0 && !tcgetattr(fd, &t)) {
		files_termios_to_entry(&t, &te, cc);
		ti.termios = &te;
	}
	if (fd >= 0 && !ioctl(fd, TIOCGWINSZ, &ws)) {
		files_winsize_to_entry(&ws, &we);
		ti.winsize = &we;
	}
	return img_write_msg(fc->st->tty_info, &ti.base);
}

/*
 * The terminal's path as a regular file entry (CRIU's regf_id: its restore
 * finds the path there). Written first, so the owner (fown) stays the tty
 * file's own.
 */
static int dump_regf(struct files_dump_ctx *fc, const struct fd_desc *d, TtyFileEntry *tf)
{
	const struct fd_desc *cur = fc->st->cur;
	char proc_path[64];
	int ret;

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	fc->st->cur = NULL;
	ret = files_dump_reg_path(fc, d->link, proc_path, &d->st, d->flags, 0, d->mnt_id,
				  &tf->regf_id);
	fc->st->cur = cur;
	fc->st->cur_used = false;
	tf->has_regf_id = !ret;
	return ret;
}

#define SHELL_TTY_ID_BASE (1u << 30)

/* A pty's id (index << 1) must not be the console's or a VT's (index past CRIU's 1000). */
static int pty_id_free(struct files_dump *st, const struct fd_desc *d, uint32_t info_id)
{
	for (int i = 0; i < st->nr_ttys; i++)
		if (st->ttys[i].info_id == info_id && st->ttys[i].index < 0 &&
		    (files_tty_is_console(st->ttys[i].rdev) || files_tty_is_vt(st->ttys[i].rdev))) {
			pr_err("fd %d of pid %d (%s): its tty id %u is the console's or a VT's: a pty "
			       "index past CRIU's (1000)\n",
			       d->fd, d->pid, d->link, info_id);
			return -EBUSY;
		}
	return 0;
}

static int tty_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = fc->st;
	TtyFileEntry tf = TTY_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	uint32_t info_id = 0;
	int ret;

	if (files_is_ptm(d->st.st_rdev) || files_is_pts(d->st.st_rdev)) {
		ret = files_pty_dump(fc, d, &info_id);
		if (!ret)
			ret = pty_id_free(fd, d, info_id);
		if (!ret)
			ret = dump_regf(fc, d, &tf);
		goto write;
	}
	if (files_tty_is_console(d->st.st_rdev) || files_tty_is_vt(d->st.st_rdev)) {
		ret = files_tty_dev_dump(fc, d, &info_id);
		if (!ret)
			ret = dump_regf(fc, d, &tf);
		goto write;
	}
	if (!fc->shell_job) {
		pr_err("fd %d of pid %d is the terminal %s: pass --shell-job to dump a process "
		       "attached to a terminal\n",
		       d->fd, d->pid, d->link);
		return -ENOTSUP;
	}
	for (int i = 0; i < fd->nr_ttys && !info_id; i++)
		if (fd->ttys[i].rdev == d->st.st_rdev)
			info_id = fd->ttys[i].info_id;
	if (!info_id) {
		struct dumped_tty *n = xrealloc_array(fd->ttys, fd->nr_ttys + 1, sizeof(*n));

		if (!n)
			return -ENOMEM;
		fd->ttys = n;
		/* Above every pty's (index << 1, index < 2^20), the console's and the VTs'. */
		info_id = files_new_id(fc) | SHELL_TTY_ID_BASE;
		ret = dump_tty_info(fc, d, info_id);
		if (ret)
			return ret;
		n[fd->nr_ttys++] = (struct dumped_tty){
		    .rdev = d->st.st_rdev, .info_id = info_id, .index = -1, .fd = -1};
	}
	ret = 0;
write:
	if (ret)
		return ret;
	*id = files_new_id(fc);
	tf.id = *id;
	tf.tty_info_id = info_id;
	tf.flags = d->flags;
	tf.fown = &fown;
	fe.type = FD_TYPES__TTY;
	fe.id = *id;
	fe.tty = &tf;
	return files_write_entry(fc, &fe);
}

static bool tty_match(const struct fd_desc *d)
{
	return S_ISCHR(d->st.st_mode) && is_tty(d->st.st_rdev);
}

static int tty_dump_fini(struct files_dump_ctx *fc)
{
	int ret = files_pty_dump_fini(fc), r = img_close(fc->st->tty_info);

	fc->st->tty_info = NULL;
	return ret ? ret : r;
}

static void tty_dump_free(struct files_dump_ctx *fc)
{
	files_pty_dump_free(fc->st);
	img_close(fc->st->tty_info);
	free(fc->st->ttys);
}

/* ---- restore ---- */

static int tty_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	return files_check_sub(fe, fe->tty, fe->tty ? fe->tty->id : 0);
}

/* A console or VT entry opened again (tty_dev.c), or NULL. */
static const TtyInfoEntry *reopened_dev(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const TtyInfoEntry *ti = files_tty_info(fc->st, fe->tty->tty_info_id);

	return ti && files_tty_reopened(ti, fc->shell_job) ? ti : NULL;
}

/*
 * tty-info.img and the pty pairs; the console and VTs checked; any other
 * terminal needs --shell-job.
 */
static int tty_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = files_pty_load(fc);

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;
		const TtyInfoEntry *ti;

		if (fe->type != FD_TYPES__TTY)
			continue;
		ti = files_tty_info(fr, fe->tty->tty_info_id);
		if (ti && (ti->type == TTY_TYPE__CONSOLE || ti->type == TTY_TYPE__VT) &&
		    !files_tty_reopened(ti, fc->shell_job) && !files_tty_is_vt(ti->rdev)) {
			pr_err("tty-info.img: entry %u (a VT) names device %u:%u, which is not one\n",
			       ti->id, major(ti->rdev), minor(ti->rdev));
			ret = -EINVAL;
			break;
		}
		if (ti && files_tty_reopened(ti, fc->shell_job)) {
			ret = files_tty_dev_check(fc, fe, ti);
			continue;
		}
		if (files_rpty_of(fr, fe) || files_rpty_orphan(fr, fe) || fc->shell_job)
			continue;
		pr_err("files.img: file %u is a terminal whose pty master is not in the images: "
		       "pass --shell-job to restore it on amber's terminal (or, through the RPC, "
		       "orphan_pts_master with notify_scripts to get a new master)\n",
		       fe->id);
		ret = -EINVAL;
	}
	return ret;
}

/* A terminal is the restoring amber's own: a new description of it. */
static int prepare_tty(struct files_rst_ctx *fc, struct rfile *rf)
{
	int flags = (rf->fe->tty->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY | O_CLOEXEC;
	int fd = -1;

	if (isatty(STDIN_FILENO)) {
		fd = open("/proc/self/fd/0", flags);
		if (fd < 0)
			fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, fc->svc_fd_base);
	} else {
		fd = open("/dev/tty", flags);
	}
	if (fd < 0) {
		pr_err("terminal file %u: amber has no terminal to give (stdin is not a tty, no "
		       "/dev/tty): %s\n",
		       rf->fe->id, strerror(errno));
		return -ENOTTY;
	}
	rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

static int tty_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = files_pty_prepare(fc);

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		const TtyInfoEntry *ti;

		if (rf->fe->type != FD_TYPES__TTY || rf->svc_fd >= 0 ||
		    files_rpty_orphan(fr, rf->fe) || files_rpty_of(fr, rf->fe))
			continue;
		ti = reopened_dev(fc, rf->fe);
		ret = ti ? files_tty_dev_prepare(fc, rf, ti) : prepare_tty(fc, rf);
	}
	return ret;
}

static void tty_rst_free(struct files_rst_ctx *fc)
{
	files_pty_rst_free(fc->st);
	/* made by files_pty_prepare() only: a context it never saw has zeros here */
	if (fc->orphan_sk[0] > 0)
		files_close_fd(&fc->orphan_sk[0]);
	if (fc->orphan_sk[1] > 0)
		files_close_fd(&fc->orphan_sk[1]);
	if (fc->pty_sk[0] > 0)
		files_close_fd(&fc->pty_sk[0]);
	if (fc->pty_sk[1] > 0)
		files_close_fd(&fc->pty_sk[1]);
}

/* files.h: a session leader's pty, console or VT as its controlling terminal again. */
int files_restore_ctty(struct files_rst_ctx *fc, pid_t pid)
{
	int ret;

	/* each task would scan every file for a terminal: none is common */
	if (!fc->st || !fc->st->nr_tty_infos)
		return 0;
	ret = files_pty_restore_ctty(fc, pid);

	return ret ? ret : files_tty_dev_restore_ctty(fc, pid);
}

static uint32_t tty_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->tty->flags;
}

const struct files_type files_tty_type = {
    .type = FD_TYPES__TTY,
    .name = "terminal",
    .match = tty_match,
    .dump = tty_dump,
    .dump_fini = tty_dump_fini,
    .dump_free = tty_dump_free,
    .check = tty_check,
    .load = tty_load,
    .prepare = tty_prepare,
    .finish = files_pty_finish,
    .flags = tty_flags,
    .rst_free = tty_rst_free,
};
