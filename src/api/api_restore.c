// SPDX-License-Identifier: MIT
/* amber_restore(): see amber.h. */
#define LOG_PREFIX "api: "
#include <errno.h>

#include "api/api.h"
#include "base/log.h"
#include "kexec/kexec.h"
#include "restore/restore.h"

int amber_restore(const struct amber_restore_opts *user, pid_t *root_pid, int *wait_status)
{
	struct amber_restore_opts o;
	struct restore_opts r;
	enum netlock_method lock;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (!o.images_dir == !o.pkram) {
		pr_err("a restore needs the images directory or a PKRAM store (one of them)\n");
		return -EINVAL;
	}
	ret = api_network_lock(o.network_lock, &lock);
	if (ret)
		return ret;
	if (o.rst_sibling && !o.detach) {
		pr_err("rst_sibling needs a detached restore: amber can't wait for its parent's child\n");
		return -EINVAL;
	}
	r = (struct restore_opts){
		.dir = o.images_dir,
		.detach = o.detach,
		.shell_job = o.shell_job,
		.ext_unix_sk = o.ext_unix_sk,
		.file_locks = o.file_locks,
		.tcp_established = o.tcp_established,
		.tcp_close = o.tcp_close,
		.lazy = o.lazy_pages,
		.lazy_socket = o.lazy_socket,
		.network_lock = lock,
		.root = o.root,
		.ext_mnts = (const struct ext_mount *)o.ext_mounts,
		.nr_ext_mnts = o.nr_ext_mounts,
		.cgroup_root = o.cgroup_root,
		.cgroups_ignore = o.manage_cgroups == AMBER_CGROUPS_IGNORE,
		.cgroups_strict = o.manage_cgroups == AMBER_CGROUPS_FULL ||
				  o.manage_cgroups == AMBER_CGROUPS_STRICT,
		.cgroups_mode = o.manage_cgroups == AMBER_CGROUPS_DEFAULT ? AMBER_CGROUPS_SOFT
									  : o.manage_cgroups,
		.sibling = o.rst_sibling,
		.inherit_fds = o.inherit_fds,
		.nr_inherit_fds = o.nr_inherit_fds,
		.notify = o.notify,
		.notify_arg = o.notify_arg,
		.orphan_pts = o.orphan_pts_master,
		.orphan_pts_arg = o.orphan_pts_master_arg,
		.veths = (const struct rst_veth *)o.veths,
		.nr_veths = o.nr_veths,
		/* a lazy restore's daemon still serves from the store: copied */
		.pkram_move = o.pkram && !o.pkram_copy && !o.lazy_pages,
	};
	if (o.pkram)
		return api_ret(kexec_restore(&r, o.pkram, root_pid, wait_status));
	return api_ret(restore_run(&r, root_pid, wait_status));
}
