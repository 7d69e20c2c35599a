// SPDX-License-Identifier: MIT
/* Sized option structs (see api.h) and the pieces several verbs share. */
#define LOG_PREFIX "api: "
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "base/log.h"
#include "net/netlock.h"
#include "pageserver/conn.h"

int api_copy_opts(void *dst, size_t dst_sz, const void *src)
{
	size_t sz;

	memset(dst, 0, dst_sz);
	if (!src)
		return -EINVAL;
	memcpy(&sz, src, sizeof(sz));
	if (sz < sizeof(sz)) {
		pr_err("option struct with size %zu: set .sz = sizeof(the struct)\n", sz);
		return -EINVAL;
	}
	if (sz > dst_sz) {
		const uint8_t *tail = (const uint8_t *)src + dst_sz;

		for (size_t i = 0; i < sz - dst_sz; i++) {
			if (tail[i]) {
				pr_err("option struct of %zu bytes sets an option this build (%zu "
				       "bytes) does not know\n", sz, dst_sz);
				return -E2BIG;
			}
		}
		sz = dst_sz;
	}
	memcpy(dst, src, sz);
	memcpy(dst, &dst_sz, sizeof(dst_sz));
	return 0;
}

void api_ps_sec(struct ps_sec *sec, const struct amber_ps_endpoint *ep)
{
	*sec = (struct ps_sec){
		.token_file = ep->token_file,
		.tls = ep->tls,
		.tls_cert = ep->tls_cert,
		.tls_key = ep->tls_key,
		.tls_cacert = ep->tls_cacert,
		.tls_no_cn_verify = ep->tls_no_cn_verify,
	};
}

int api_network_lock(enum amber_network_lock in, enum netlock_method *out)
{
	switch (in) {
	case AMBER_NETWORK_LOCK_DEFAULT:
		*out = NETLOCK_AUTO;
		return 0;
	case AMBER_NETWORK_LOCK_IPTABLES:
		*out = NETLOCK_IPTABLES;
		return 0;
	case AMBER_NETWORK_LOCK_NFTABLES:
		*out = NETLOCK_NFTABLES;
		return 0;
	case AMBER_NETWORK_LOCK_SKIP:
		*out = NETLOCK_SKIP;
		return 0;
	}
	pr_err("unknown network lock method %d\n", in);
	return -EINVAL;
}

int amber_net_unlock(const struct amber_net_unlock_opts *user)
{
	struct amber_net_unlock_opts o;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (!o.images_dir) {
		pr_err("net-unlock needs the images directory\n");
		return -EINVAL;
	}
	return api_ret(netlock_unlock_dir(o.images_dir));
}

int amber_log_open(const char *path, int level, unsigned flags)
{
	return log_init(path, level, flags & AMBER_LOG_ERRORS_TO_STDERR ? LOG_ERRORS_TO_STDERR : 0);
}

void amber_log_close(void)
{
	log_fini();
}
