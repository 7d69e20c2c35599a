// SPDX-License-Identifier: MIT
/* amber_lazy_pages() and amber_page_server(): see amber.h. */
#define LOG_PREFIX "api: "
#include <errno.h>

#include "api/api.h"
#include "base/log.h"
#include "kexec/kexec.h"
#include "lazy/lazy.h"
#include "pageserver/server.h"

int amber_lazy_pages(const struct amber_lazy_opts *user)
{
	struct amber_lazy_opts o;
	struct lazy_opts l;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (!o.images_dir == !o.pkram) {
		pr_err("lazy-pages needs the images directory or a PKRAM store (one of them)\n");
		return -EINVAL;
	}
	if (o.page_server && (!o.ps.address || o.ps.port <= 0)) {
		pr_err("--page-server needs an address and a port\n");
		return -EINVAL;
	}
	l = (struct lazy_opts){
		.dir = o.images_dir,
		.socket = o.socket,
		.resume = o.resume,
		.no_prefetch = o.no_prefetch,
		.page_server = o.page_server,
		.ps = {
			.size = sizeof(l.ps),
			.address = o.ps.address,
			.port = o.ps.port,
			.token_file = o.ps.token_file,
			.tls = o.ps.tls,
			.tls_cacert = o.ps.tls_cacert,
			.tls_cert = o.ps.tls_cert,
			.tls_key = o.ps.tls_key,
			.tls_no_cn_verify = o.ps.tls_no_cn_verify,
		},
	};
	if (o.pkram)
		return api_ret(kexec_lazy(&l, o.pkram));
	return api_ret(lazy_daemon_run(&l));
}

int amber_page_server(const struct amber_page_server_opts *user)
{
	struct amber_page_server_opts o;
	struct ps_server_opts p;
	int ret = api_copy_opts(&o, sizeof(o), user);

	if (ret)
		return ret;
	if (o.ps.port < 0 || o.ps.port > 65535) {
		pr_err("port %d out of range\n", o.ps.port);
		return -EINVAL;
	}
	if (o.lazy_pages && o.prev_images_dir) {
		pr_err("--prev-images-dir is for receiving an incremental dump, not with "
		       "--lazy-pages\n");
		return -EINVAL;
	}
	p = (struct ps_server_opts){
		.address = o.ps.address,
		.port = o.ps.port,
		.dir = o.images_dir ?: ".",
		.prev_dir = o.prev_images_dir,
		.lazy = o.lazy_pages,
		.timeout = o.timeout,
		.listening = o.listening,
		.listening_arg = o.listening_arg,
	};
	api_ps_sec(&p.sec, &o.ps);
	/* Giving a certificate is what turns TLS on for a server. */
	if (p.sec.tls_cert || p.sec.tls_key)
		p.sec.tls = true;
	if (p.sec.tls && (!p.sec.tls_cert || !p.sec.tls_key)) {
		pr_err("TLS needs a certificate and its key\n");
		return -EINVAL;
	}
	return api_ret(ps_server_run(&p));
}
