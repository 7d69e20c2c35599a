// SPDX-License-Identifier: MIT
/* What the verbs share: -v/-o, page-server endpoints, exit statuses. */
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/cli.h"

static bool is_level(const char *s)
{
	return s && s[0] >= '0' && s[0] <= '9' && !s[1];
}

bool cli_common_opt(int c, struct cli_common *co, int argc, char **argv)
{
	switch (c) {
	case 'v':
		/* getopt gives -v's optional value only attached (-v4): take -v 4 too. */
		if (!optarg && optind < argc && is_level(argv[optind]))
			optarg = argv[optind++];
		co->verbosity = optarg ? atoi(optarg) : AMBER_LOG_DEBUG;
		return true;
	case 'o':
		co->log_file = optarg;
		return true;
	case OPT_UNPRIVILEGED:
		co->unprivileged = true;
		return true;
	}
	return false;
}

bool cli_int_arg(const char *s, long min, long max, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

bool cli_endpoint_opt(int c, struct amber_ps_endpoint *ep)
{
	switch (c) {
	case OPT_ADDRESS:
		ep->address = optarg;
		return true;
	case OPT_PORT:
		if (!cli_int_arg(optarg, 0, 65535, &ep->port))
			ep->port = -1; /* "--port P" is required: said after parsing */
		return true;
	case OPT_TOKEN:
		ep->token_file = optarg;
		return true;
	case OPT_TLS:
		ep->tls = true;
		return true;
	case OPT_TLS_CERT:
		ep->tls_cert = optarg;
		return true;
	case OPT_TLS_KEY:
		ep->tls_key = optarg;
		return true;
	case OPT_TLS_CACERT:
		ep->tls_cacert = optarg;
		return true;
	case OPT_TLS_NO_CN:
		ep->tls_no_cn_verify = true;
		return true;
	}
	return false;
}

static bool may_checkpoint(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	uint64_t eff;

	if (syscall(SYS_capget, &hdr, d))
		return false;
	eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	return eff & (1ULL << CAP_CHECKPOINT_RESTORE | 1ULL << CAP_SYS_ADMIN);
}

bool cli_log_open(const struct cli_common *co)
{
	int ret;

	if (co->unprivileged && !may_checkpoint()) {
		fprintf(stderr, "amber: --unprivileged needs CAP_CHECKPOINT_RESTORE in the effective "
				"set (setpriv --inh-caps=+checkpoint_restore "
				"--ambient-caps=+checkpoint_restore, or a file capability)\n");
		return false;
	}
	ret = amber_log_open(co->log_file, co->verbosity, AMBER_LOG_ERRORS_TO_STDERR);
	if (ret)
		fprintf(stderr, "amber: can't open log %s: %s\n", co->log_file, strerror(-ret));
	return !ret;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "amber %s: ", verb);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "amber %s: bad options (see amber --help)\n", verb);
	return CLI_EXIT_USAGE;
}

int cli_result(const char *verb, int ret)
{
	/* The log has said what failed and why. */
	return ret ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* --network-lock nftables|iptables|skip into @out; false if @s is none of them. */
static bool network_lock_of(const char *s, enum amber_network_lock *out)
{
	static const struct {
		const char *name;
		enum amber_network_lock val;
	} methods[] = {
		{ "nftables", AMBER_NETWORK_LOCK_NFTABLES },
		{ "iptables", AMBER_NETWORK_LOCK_IPTABLES },
		{ "skip", AMBER_NETWORK_LOCK_SKIP },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!strcmp(s, methods[i].name)) {
			*out = methods[i].val;
			return true;
		}
	}
	return false;
}

int cli_tree_opt(const char *verb, int c, const struct cli_tree *t)
{
	switch (c) {
	case 'j':
		*t->shell_job = true;
		return 1;
	case 'X':
		*t->ext_unix_sk = true;
		return 1;
	case 'l':
		*t->file_locks = true;
		return 1;
	case OPT_TCP_ESTABLISHED:
		*t->tcp_established = true;
		return 1;
	case OPT_NETWORK_LOCK:
		if (network_lock_of(optarg, t->network_lock))
			return 1;
		cli_usage(verb, "--network-lock is nftables, iptables or skip");
		return -1;
	}
	return 0;
}

/*
 * net[INO]:KEY (CRIU's --external for a network namespace the caller
 * owns, as runc passes it): dump only, the restore takes the namespace
 * as --inherit-fd fd[N]:KEY.
 */
static int cli_ext_netns(const char *verb, struct cli_container *ct, const char *arg)
{
	char *end;
	unsigned long long ino = strtoull(arg, &end, 10);

	if (strcmp(verb, "dump") && strcmp(verb, "pre-dump")) {
		cli_usage(verb, "a network namespace is given to a restore as --inherit-fd "
			  "fd[N]:KEY, not --external net[...]");
		return -1;
	}
	if (end == arg || strncmp(end, "]:", 2) || !end[2]) {
		cli_usage(verb, "--external net[INODE]:KEY");
		return -1;
	}
	ct->ext_netns_ino = ino;
	ct->ext_netns_key = end + 2;
	return 1;
}

/* IN<sep>OUT[@BRIDGE] (@arg is changed in place): one more of ct->veths. */
static int cli_veth(const char *verb, struct cli_container *ct, char *arg, const char *sep)
{
	char *out = strstr(arg, sep), *br;
	struct amber_veth *v;

	if (!out || out == arg || !out[strlen(sep)]) {
		cli_usage(verb, "a veth is --external veth[IFNAME]:OUTNAME[@BRIDGE] or "
			  "--veth-pair IFNAME=OUTNAME[@BRIDGE]");
		return -1;
	}
	*out = 0;
	out += strlen(sep);
	br = strchr(out, '@');
	if (br)
		*br++ = 0;
	v = realloc(ct->veths, (ct->nr_veths + 1) * sizeof(*v));
	if (!v)
		return -1;
	ct->veths = v;
	v[ct->nr_veths++] = (struct amber_veth){ .in = arg, .out = out, .bridge = br };
	return 1;
}

int cli_container_opt(const char *verb, int c, struct cli_container *ct)
{
	static const char *const modes[] = { "", "ignore", "soft", "full", "strict", "props", "none" };
	struct amber_ext_mount *ext;
	char *sep;

	switch (c) {
	case OPT_ROOT:
		ct->root = optarg;
		return 1;
	case OPT_VETH_PAIR:
		return cli_veth(verb, ct, optarg, "=");
	case OPT_EXT_MOUNT_MAP:
	case OPT_EXTERNAL:
		if (c == OPT_EXTERNAL && !strncmp(optarg, "veth[", 5))
			return cli_veth(verb, ct, optarg + 5, "]:");
		if (c == OPT_EXTERNAL && !strncmp(optarg, "net[", 4))
			return cli_ext_netns(verb, ct, optarg + 4);
		/* KEY:VAL, or mnt[KEY]:VAL as CRIU's --external */
		if (c == OPT_EXTERNAL) {
			sep = strstr(optarg, "]:");
			if (strncmp(optarg, "mnt[", 4) || !sep) {
				cli_usage(verb, "--external is mnt[KEY]:VAL, net[INODE]:KEY or veth[IFNAME]:OUTNAME[@BRIDGE] "
					  "(other kinds are not supported)");
				return -1;
			}
			*sep = 0;
			optarg += 4;
			sep++;
		} else {
			sep = strchr(optarg, ':');
			if (!sep) {
				cli_usage(verb, "--ext-mount-map is KEY:VAL");
				return -1;
			}
		}
		*sep = 0;
		ext = realloc(ct->ext, (ct->nr_ext + 1) * sizeof(*ext));
		if (!ext)
			return -1;
		ct->ext = ext;
		ext[ct->nr_ext].key = optarg;
		ext[ct->nr_ext++].val = sep + 1;
		return 1;
	case OPT_MANAGE_CGROUPS:
		ct->cgroups = AMBER_CGROUPS_SOFT;
		for (size_t i = 1; optarg && i < sizeof(modes) / sizeof(modes[0]); i++)
			if (!strcmp(optarg, modes[i]))
				ct->cgroups = (enum amber_manage_cgroups)i;
		if (optarg && ct->cgroups == AMBER_CGROUPS_SOFT && strcmp(optarg, "soft")) {
			cli_usage(verb, "--manage-cgroups is ignore, none, props, soft, full or strict");
			return -1;
		}
		return 1;
	case OPT_CGROUP_ROOT:
		/* [CONTROLLER:]PATH; amber moves tasks in the unified (v2) hierarchy only */
		sep = strchr(optarg, ':');
		if (!sep || sep[1] == '/' || optarg[0] == '/')
			ct->cgroup_root = sep && optarg[0] != '/' ? sep + 1 : optarg;
		return 1;
	case OPT_FREEZE_CGROUP:
		ct->freeze_cgroup = optarg;
		return 1;
	case OPT_EMPTY_NS:
		if (strcmp(optarg, "net")) {
			cli_usage(verb, "--empty-ns takes net only");
			return -1;
		}
		return 1;
	}
	return 0;
}
