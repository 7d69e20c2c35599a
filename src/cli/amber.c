// SPDX-License-Identifier: MIT
/*
 * The amber command line: parses options into an explicit options struct
 * per verb and calls the library. No verb reads global options.
 */
#define LOG_PREFIX "amber: "
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/dedup.h"
#include "dump/dump.h"
#include "base/kerndat.h"
#include "lazy/lazy.h"
#include "base/log.h"
#include "pageserver/server.h"
#include "restore/restore.h"
#include "mem/track.h"

struct common_opts {
	int verbosity;
	const char *log_file;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: amber <command> [options]\n"
		"\n"
		"commands:\n"
		"  check [--feature NAME]          what this kernel offers amber\n"
		"  dump -t PID -D DIR              checkpoint the tree rooted at PID\n"
		"       [--leave-running] [--shell-job]\n"
		"       [--track-mem[=auto|soft-dirty|uffd-wp]] [--prev-images-dir REL]\n"
		"                                  only pages written since the parent images\n"
		"  pre-dump -t PID -D DIR [--prev-images-dir REL] [--track-mem=KIND]\n"
		"           [--pre-dump-mode=splice|read]\n"
		"                                  memory only; the tree keeps running (splice:\n"
		"                                  pages copied while it is frozen; read: read\n"
		"                                  once it runs again, frozen only to scan)\n"
		"       (dump and pre-dump: [--page-server --address A --port P [SECURITY]]\n"
		"        streams the pages to a page server; --auto-dedup punches\n"
		"        re-saved pages out of the parents)\n"
		"  pre-dump -t PID --cleanup       remove amber's memory tracker from the tree\n"
		"  dedup -D DIR                    --auto-dedup after the fact, down the chain\n"
		"  restore -D DIR [-d] [--shell-job] [--lazy-pages [--lazy-socket PATH]]\n"
		"                                  restore a tree from DIR\n"
		"  lazy-pages -D DIR [--socket PATH] [--resume] [--no-prefetch]\n"
		"             [--page-server --address A --port P [SECURITY]]\n"
		"                                  serve the memory of a lazy restore (from\n"
		"                                  a page server: post-copy migration)\n"
		"  page-server --port P [--address A] [-D DIR] [SECURITY]\n"
		"              [--prev-images-dir REL | --lazy-pages]\n"
		"                                  receive a dump's pages into DIR (with the\n"
		"                                  parent images of an incremental one), or\n"
		"                                  serve DIR's pages on demand (--lazy-pages)\n"
		"\n"
		"SECURITY: --token-file F (shared secret, file mode 0600), and/or TLS:\n"
		"  server: --tls-cert C --tls-key K [--tls-cacert CA (require client certs)]\n"
		"  client: --tls [--tls-cacert CA] [--tls-cert C --tls-key K] [--tls-no-cn-verify]\n"
		"  neither: plain CRIU protocol, unauthenticated (stock CRIU interoperates)\n"
		"\n"
		"common options: -v N (0..4, default 2), -o LOG (default stderr)\n");
}

/* Handles -v/-o; returns 1 if it consumed the option. */
static int common_opt(int c, struct common_opts *co)
{
	switch (c) {
	case 'v':
		co->verbosity = optarg ? atoi(optarg) : 4;
		return 1;
	case 'o':
		co->log_file = optarg;
		return 1;
	}
	return 0;
}

static int cmd_check(int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = { { "feature", required_argument, 0, 'f' }, { 0 } };
	const char *feature = NULL;
	struct kerndat kd;
	int c;

	while ((c = getopt_long(argc, argv, "v::o:", lo, NULL)) != -1) {
		if (common_opt(c, co))
			continue;
		if (c == 'f')
			feature = optarg;
		else
			return 2;
	}
	if (log_init(co->log_file, co->verbosity))
		return 1;
	if (feature) {
		int f = kd_lookup(feature);

		if (f < 0) {
			fprintf(stderr, "unknown feature %s; known:", feature);
			for (int i = 0; i < KD_NR_FEATURES; i++)
				fprintf(stderr, " %s", kd_name(i));
			fprintf(stderr, "\n");
			return 2;
		}
		memset(&kd, 0, sizeof(kd));
		kerndat_probe_one(&kd, f);
		printf("%-16s %-4s %s\n", kd_name(f), kd.f[f].ok ? "yes" : "no", kd.f[f].detail);
		return kd.f[f].ok ? 0 : 1;
	}
	kerndat_probe(&kd);
	printf("%-16s %-4s %s\n", "FEATURE", "OK", "DETAIL");
	for (int i = 0; i < KD_NR_FEATURES; i++)
		printf("%-16s %-4s %s\n", kd_name(i), kd.f[i].ok ? "yes" : "no", kd.f[i].detail);

	struct tracker tr;
	char why[512];
	int ret = track_select(&tr, "auto", why, sizeof(why));

	printf("\n--track-mem=auto uses: %s\n  because %s\n", ret ? "nothing" :
	       track_kind_name(tr.kind), why);
	return 0;
}

enum {
	OPT_PAGE_SERVER = 0x100,
	OPT_ADDRESS,
	OPT_PORT,
	OPT_LAZY,
	OPT_TOKEN,
	OPT_TLS,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CACERT,
	OPT_TLS_NO_CN,
};

#define SEC_LONG_OPTS                                            \
	{ "token-file", required_argument, 0, OPT_TOKEN },      \
	{ "tls", no_argument, 0, OPT_TLS },                     \
	{ "tls-cert", required_argument, 0, OPT_TLS_CERT },     \
	{ "tls-key", required_argument, 0, OPT_TLS_KEY },       \
	{ "tls-cacert", required_argument, 0, OPT_TLS_CACERT }, \
	{ "tls-no-cn-verify", no_argument, 0, OPT_TLS_NO_CN }

/* Security options shared by page-server and dump; 1 if consumed. */
static int sec_opt(int c, struct ps_sec *s)
{
	switch (c) {
	case OPT_TOKEN:
		s->token_file = optarg;
		return 1;
	case OPT_TLS:
		s->tls = true;
		return 1;
	case OPT_TLS_CERT:
		s->tls_cert = optarg;
		return 1;
	case OPT_TLS_KEY:
		s->tls_key = optarg;
		return 1;
	case OPT_TLS_CACERT:
		s->tls_cacert = optarg;
		return 1;
	case OPT_TLS_NO_CN:
		s->tls_no_cn_verify = true;
		return 1;
	}
	return 0;
}

static int parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return (*s && !*end && v >= 0 && v <= 65535) ? (int)v : -1;
}

static int cmd_page_server(int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		{ "lazy-pages", no_argument, 0, OPT_LAZY },
		{ "prev-images-dir", required_argument, 0, 'P' },
		SEC_LONG_OPTS,
		{ 0 },
	};
	struct ps_server_opts o = { .dir = ".", .port = -1 };
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (common_opt(c, co) || sec_opt(c, &o.sec))
			continue;
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case OPT_ADDRESS:
			o.address = optarg;
			break;
		case OPT_PORT:
			o.port = parse_port(optarg);
			break;
		case OPT_LAZY:
			o.lazy = true;
			break;
		case 'P':
			o.prev_dir = optarg;
			break;
		default:
			return 2;
		}
	}
	if (o.port < 0) {
		fprintf(stderr, "amber page-server: --port P (0..65535) is required\n");
		return 2;
	}
	if (o.lazy && o.prev_dir) {
		fprintf(stderr, "amber page-server: --prev-images-dir is for receiving an "
				"incremental dump, not with --lazy-pages\n");
		return 2;
	}
	/* Giving a certificate is what turns TLS on for the server. */
	if (o.sec.tls_cert || o.sec.tls_key)
		o.sec.tls = true;
	if (o.sec.tls && (!o.sec.tls_cert || !o.sec.tls_key)) {
		fprintf(stderr, "amber page-server: TLS needs --tls-cert and --tls-key\n");
		return 2;
	}
	if (log_init(co->log_file, co->verbosity))
		return 1;
	return amber_page_server(&o) ? 1 : 0;
}

static int cmd_dump_common(int argc, char **argv, struct common_opts *co, bool pre)
{
	static const struct option lo[] = {
		{ "tree", required_argument, 0, 't' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "track-mem", optional_argument, 0, 'T' },
		{ "prev-images-dir", required_argument, 0, 'P' },
		{ "cleanup", no_argument, 0, 'C' },
		{ "auto-dedup", no_argument, 0, 'A' },
		{ "pre-dump-mode", required_argument, 0, 'M' },
		{ "page-server", no_argument, 0, OPT_PAGE_SERVER },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		SEC_LONG_OPTS,
		{ 0 },
	};
	struct dump_opts o = { .ps_port = -1 };
	const char *verb = pre ? "pre-dump" : "dump";
	int c;

	while ((c = getopt_long(argc, argv, "t:D:Rjv::o:", lo, NULL)) != -1) {
		if (common_opt(c, co) || sec_opt(c, &o.ps_sec))
			continue;
		switch (c) {
		case 't':
			o.pid = atoi(optarg);
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'T':
			o.track_mem = optarg ? optarg : "auto";
			break;
		case 'P':
			o.prev_dir = optarg;
			break;
		case 'C':
			o.cleanup = true;
			break;
		case 'A':
			o.auto_dedup = true;
			break;
		case 'M':
			if (!pre) {
				fprintf(stderr, "amber dump: --pre-dump-mode belongs to pre-dump\n");
				return 2;
			}
			if (!strcmp(optarg, "read")) {
				o.predump_read = true;
			} else if (strcmp(optarg, "splice")) {
				fprintf(stderr, "amber %s: --pre-dump-mode is read or splice\n",
					verb);
				return 2;
			}
			break;
		case OPT_PAGE_SERVER:
			o.page_server = true;
			break;
		case OPT_ADDRESS:
			o.ps_address = optarg;
			break;
		case OPT_PORT:
			o.ps_port = parse_port(optarg);
			break;
		default:
			return 2;
		}
	}
	if (o.pid <= 0 || (!o.dir && !o.cleanup)) {
		fprintf(stderr, "amber %s: -t PID and -D DIR are required\n", verb);
		return 2;
	}
	if (o.auto_dedup && o.page_server) {
		fprintf(stderr, "amber %s: --auto-dedup works where the pages are: run "
				"`amber dedup` on the page server's side\n", verb);
		return 2;
	}
	if (o.cleanup && !pre) {
		fprintf(stderr, "amber dump: --cleanup belongs to pre-dump\n");
		return 2;
	}
	if (o.page_server && (!o.ps_address || o.ps_port <= 0)) {
		fprintf(stderr, "amber %s: --page-server needs --address A and --port P\n", verb);
		return 2;
	}
	if (log_init(co->log_file, co->verbosity))
		return 1;
	if (pre)
		return amber_predump(&o) ? 1 : 0;
	return amber_dump(&o) ? 1 : 0;
}

static int cmd_dump(int argc, char **argv, struct common_opts *co)
{
	return cmd_dump_common(argc, argv, co, false);
}

static int cmd_predump(int argc, char **argv, struct common_opts *co)
{
	return cmd_dump_common(argc, argv, co, true);
}

static int cmd_dedup(int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = { { "images-dir", required_argument, 0, 'D' }, { 0 } };
	const char *dir = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (common_opt(c, co))
			continue;
		if (c != 'D')
			return 2;
		dir = optarg;
	}
	if (!dir) {
		fprintf(stderr, "amber dedup: -D DIR is required\n");
		return 2;
	}
	if (log_init(co->log_file, co->verbosity))
		return 1;
	return amber_dedup(dir) ? 1 : 0;
}

static int cmd_restore(int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "restore-detached", no_argument, 0, 'd' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "lazy-pages", no_argument, 0, 'L' },
		{ "lazy-socket", required_argument, 0, 'S' },
		{ 0 },
	};
	struct restore_opts o = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "D:djv::o:", lo, NULL)) != -1) {
		if (common_opt(c, co))
			continue;
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'L':
			o.lazy = true;
			break;
		case 'S':
			o.lazy_socket = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!o.dir) {
		fprintf(stderr, "amber restore: -D DIR is required\n");
		return 2;
	}
	if (log_init(co->log_file, co->verbosity))
		return 1;
	/* Without -d, amber_restore returns the root task's exit status. */
	return amber_restore(&o);
}

static int cmd_lazy_pages(int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "socket", required_argument, 0, 'S' },
		{ "resume", no_argument, 0, 'r' },
		{ "no-prefetch", no_argument, 0, 'n' },
		{ "page-server", no_argument, 0, OPT_PAGE_SERVER },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		SEC_LONG_OPTS,
		{ 0 },
	};
	struct lazy_opts o = { .ps.size = sizeof(o.ps), .ps.port = -1 };
	struct ps_sec sec = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (common_opt(c, co) || sec_opt(c, &sec))
			continue;
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case 'S':
			o.socket = optarg;
			break;
		case 'r':
			o.resume = true;
			break;
		case 'n':
			o.no_prefetch = true;
			break;
		case OPT_PAGE_SERVER:
			o.page_server = true;
			break;
		case OPT_ADDRESS:
			o.ps.address = optarg;
			break;
		case OPT_PORT:
			o.ps.port = parse_port(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!o.dir) {
		fprintf(stderr, "amber lazy-pages: -D DIR is required\n");
		return 2;
	}
	if (o.page_server && (!o.ps.address || o.ps.port <= 0)) {
		fprintf(stderr, "amber lazy-pages: --page-server needs --address A and --port P\n");
		return 2;
	}
	o.ps.token_file = sec.token_file;
	o.ps.tls = sec.tls;
	o.ps.tls_cacert = sec.tls_cacert;
	o.ps.tls_cert = sec.tls_cert;
	o.ps.tls_key = sec.tls_key;
	o.ps.tls_no_cn_verify = sec.tls_no_cn_verify;
	if (log_init(co->log_file, co->verbosity))
		return 1;
	return amber_lazy_pages(&o);
}

int main(int argc, char **argv)
{
	struct common_opts co = { .verbosity = LOG_WARN };
	const char *cmd;
	int ret;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "check"))
		ret = cmd_check(argc, argv, &co);
	else if (!strcmp(cmd, "dump"))
		ret = cmd_dump(argc, argv, &co);
	else if (!strcmp(cmd, "pre-dump"))
		ret = cmd_predump(argc, argv, &co);
	else if (!strcmp(cmd, "dedup"))
		ret = cmd_dedup(argc, argv, &co);
	else if (!strcmp(cmd, "restore"))
		ret = cmd_restore(argc, argv, &co);
	else if (!strcmp(cmd, "lazy-pages"))
		ret = cmd_lazy_pages(argc, argv, &co);
	else if (!strcmp(cmd, "page-server"))
		ret = cmd_page_server(argc, argv, &co);
	else {
		fprintf(stderr, "amber: unknown command '%s'\n", cmd);
		usage(stderr);
		ret = 2;
	}
	if (ret == 2 && optind)
		fprintf(stderr, "amber %s: bad options (see amber --help)\n", cmd);
	log_fini();
	return ret;
}
