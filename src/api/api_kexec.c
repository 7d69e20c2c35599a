// SPDX-License-Identifier: MIT
/* amber_kexec(), amber_kexec_verify(): see amber.h. */
#define LOG_PREFIX "api: "
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "api/api.h"
#include "base/log.h"
#include "kexec/kexec.h"

int amber_kexec(const struct amber_kexec_opts *user)
{
	struct amber_kexec_opts o;
	struct kexec_opts k;
	enum netlock_method lock;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (o.pid <= 0 || !o.pkram || !o.kernel) {
		pr_err("kexec needs the root pid, the store name and the next kernel\n");
		return -EINVAL;
	}
	ret = api_network_lock(o.network_lock, &lock);
	if (ret)
		return ret;
	k = (struct kexec_opts){
		.dump = {
			.pid = o.pid,
			.shell_job = o.shell_job,
			.ext_unix_sk = o.ext_unix_sk,
			.network_lock = lock,
			.file_locks = o.file_locks,
			.tcp_established = o.tcp_established,
			.skip_in_flight = o.skip_in_flight,
		},
		.name = o.pkram,
		.kernel = o.kernel,
		.initrd = o.initrd,
		.append = o.append,
		.no_reboot = o.no_reboot,
		.preserve_mounts = o.preserve_mounts,
		.prev_dir = o.prev_images_dir,
	};
	return api_ret(kexec_run(&k));
}

int amber_kexec_verify(const struct amber_kexec_verify_opts *user)
{
	struct amber_kexec_verify_opts o;
	int ret = api_copy_opts(&o, sizeof(o), user), fd;

	if (ret)
		return ret;
	if (!o.images_dir)
		return -EINVAL;
	fd = open(o.images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s", o.images_dir);
		return -errno;
	}
	ret = kexec_verify_chain(fd, true);
	close(fd);
	return api_ret(ret);
}
