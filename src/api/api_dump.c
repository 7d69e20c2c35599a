// SPDX-License-Identifier: MIT
/* amber_dump(), amber_pre_dump(), amber_dedup(): see amber.h. */
#define LOG_PREFIX "api: "
#include <errno.h>

#include "api/api.h"
#include "base/log.h"
#include "dump/dump.h"
#include "kexec/kexec.h"
#include "mem/dedup.h"

_Static_assert(sizeof(struct ext_mount) == sizeof(struct amber_ext_mount) &&
		       offsetof(struct ext_mount, val) == offsetof(struct amber_ext_mount, val),
	       "amber_ext_mount and ext_mount differ");

static int dump_opts_from(struct dump_opts *d, struct amber_dump_opts *o, const void *user)
{
	enum netlock_method lock;
	int ret = api_copy_opts(o, sizeof(*o), user);

	if (ret)
		return ret;
	if (o->pid <= 0 || (!o->images_dir && !o->cleanup)) {
		pr_err("a dump needs the root pid and the images directory\n");
		return -EINVAL;
	}
	if (o->page_server && (!o->ps.address || o->ps.port <= 0)) {
		pr_err("--page-server needs an address and a port\n");
		return -EINVAL;
	}
	if (o->auto_dedup && o->page_server) {
		pr_err("--auto-dedup works where the pages are: run dedup on the page "
		       "server's side\n");
		return -EINVAL;
	}
	if (o->lazy_pages && (o->page_server || o->leave_running || o->track_mem ||
			      o->prev_images_dir || o->ps.port < 0)) {
		pr_err("--lazy-pages serves the pages itself (needs --port, and takes no "
		       "--page-server, --leave-running, --track-mem or --prev-images-dir)\n");
		return -EINVAL;
	}
	ret = api_network_lock(o->network_lock, &lock);
	if (ret)
		return ret;
	*d = (struct dump_opts){
		.pid = o->pid,
		.dir = o->images_dir,
		.leave_running = o->leave_running,
		.shell_job = o->shell_job,
		.orphan_pts = o->orphan_pts_master,
		.ext_unix_sk = o->ext_unix_sk,
		.network_lock = lock,
		.file_locks = o->file_locks,
		.tcp_established = o->tcp_established,
		.skip_in_flight = o->skip_in_flight,
		.track_mem = o->track_mem,
		.prev_dir = o->prev_images_dir,
		.cleanup = o->cleanup,
		.predump_read = o->pre_dump_mode == AMBER_PRE_DUMP_READ,
		.auto_dedup = o->auto_dedup,
		.page_server = o->page_server,
		.lazy_pages = o->lazy_pages,
		.status_fd = o->status_fd,
		.lazy_ready = o->lazy_ready,
		.lazy_ready_arg = o->lazy_ready_arg,
		.ps_address = o->ps.address,
		.ps_port = o->ps.port,
		.ext_mnts = (const struct ext_mount *)o->ext_mounts,
		.nr_ext_mnts = o->nr_ext_mounts,
		.freeze_cgroup = o->freeze_cgroup,
		.cgroups_ignore = o->manage_cgroups == AMBER_CGROUPS_IGNORE,
		.stats = o->stats,
		.ext_netns_key = o->ext_netns_key,
		.ext_netns_ino = o->ext_netns_ino,
	};
	api_ps_sec(&d->ps_sec, &o->ps);
	return 0;
}

int amber_dump(const struct amber_dump_opts *user)
{
	struct amber_dump_opts o;
	struct dump_opts d;
	int ret = dump_opts_from(&d, &o, user);

	if (ret)
		return ret;
	if (o.cleanup || o.pre_dump_mode != AMBER_PRE_DUMP_SPLICE || o.pkram) {
		pr_err("cleanup, the pre-dump mode and a PKRAM store belong to pre-dump (amber "
		       "kexec dumps into a store)\n");
		return -EINVAL;
	}
	return api_ret(dump_run(&d));
}

int amber_pre_dump(const struct amber_dump_opts *user)
{
	struct amber_dump_opts o;
	struct dump_opts d;
	int ret = dump_opts_from(&d, &o, user);

	if (ret)
		return ret;
	if (o.lazy_pages) {
		pr_err("--lazy-pages belongs to dump: a pre-dump's tree runs on\n");
		return -EINVAL;
	}
	if (o.pre_dump_mode != AMBER_PRE_DUMP_SPLICE && o.pre_dump_mode != AMBER_PRE_DUMP_READ) {
		pr_err("unknown pre-dump mode %d\n", o.pre_dump_mode);
		return -EINVAL;
	}
	if (o.pkram && (o.page_server || o.cleanup)) {
		pr_err("a pre-dump into a PKRAM store writes its pages there (no page server)\n");
		return -EINVAL;
	}
	if (o.pkram)
		return api_ret(kexec_predump(&d, o.pkram));
	return api_ret(predump_run(&d));
}

int amber_dedup(const struct amber_dedup_opts *user)
{
	struct amber_dedup_opts o;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (!o.images_dir)
		return -EINVAL;
	return api_ret(dedup_run(o.images_dir));
}
