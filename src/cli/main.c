// SPDX-License-Identifier: MIT
/* amber VERB [options]: dispatch to the verb's file, and --help. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "rpc/rpc.h"

static const struct verb {
	const char *name;
	int (*run)(int argc, char **argv, struct cli_common *co);
} verbs[] = {
	{ "check", cli_check },
	{ "dump", cli_dump },
	{ "pre-dump", cli_pre_dump },
	{ "dedup", cli_dedup },
	{ "restore", cli_restore },
	{ "lazy-pages", cli_lazy_pages },
	{ "page-server", cli_page_server },
	{ "net-unlock", cli_net_unlock },
	{ "kexec", cli_kexec },
	{ "swrk", cli_swrk },
	{ "service", cli_service },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: amber <command> [options]\n"
		"\n"
		"commands:\n"
		"  check [--feature NAME]          what this kernel offers amber\n"
		"  dump -t PID -D DIR              checkpoint the tree rooted at PID\n"
		"       [--leave-running] [--shell-job] [--ext-unix-sk] [--file-locks]\n"
		"       [--tcp-established]        TCP connections too (TCP_REPAIR)\n"
		"       [--skip-in-flight]         drop connections not accepted yet\n"
		"       [--network-lock nftables|iptables|skip]\n"
		"                                  drop the TCP connections' packets until\n"
		"                                  the restore (default: nftables, else iptables)\n"
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
		"  pre-dump -t PID --pkram NAME -D DIR ...\n"
		"                                  into DIR below the top of the PKRAM store\n"
		"                                  NAME, for kexec --prev-images-dir DIR\n"
		"  pre-dump -t PID --cleanup       remove amber's memory tracker from the tree\n"
		"  dedup -D DIR                    --auto-dedup after the fact, down the chain\n"
		"  restore -D DIR | --pkram NAME [--pkram-copy] [-d [--pidfile FILE]]\n"
		"                 [--shell-job]\n"
		"                 [--ext-unix-sk] [--file-locks]\n"
		"                 [--network-lock M] [--tcp-established | --tcp-close]\n"
		"          [--lazy-pages [--lazy-socket PATH]]\n"
		"          [--inherit-fd fd[N]:pipe:[INO]]...\n"
		"                                  amber's fd N stands for the saved pipe INO\n"
		"                                  restore a tree from DIR; without -d, wait\n"
		"                                  for its root and exit with its status\n"
		"                                  (125: amber itself failed)\n"
		"  net-unlock -D DIR               remove the network lock a killed dump left\n"
		"  lazy-pages -D DIR | --pkram NAME [--socket PATH] [--resume] [--no-prefetch]\n"
		"             [--page-server --address A --port P [SECURITY]]\n"
		"                                  serve the memory of a lazy restore (from\n"
		"                                  a page server: post-copy migration)\n"
		"  page-server --port P [--address A] [-D DIR] [SECURITY]\n"
		"              [--prev-images-dir REL | --lazy-pages] [--timeout SECONDS]\n"
		"              [--max-connections N]\n"
		"                                  receive a dump's pages into DIR (with the\n"
		"                                  parent images of an incremental one), or\n"
		"                                  serve DIR's pages on demand (--lazy-pages)\n"
		"  kexec -t PID --pkram NAME --kernel BZIMAGE [--initrd F] [--append ARGS]\n"
		"        [--preserve-mount DIR]... [--prev-images-dir DIR] [--no-reboot]\n"
		"        [dump options]\n"
		"                                  dump into a tmpfs preserved across kexec\n"
		"                                  (PKRAM), load BZIMAGE and kexec into it;\n"
		"                                  there: amber restore --pkram NAME\n"
		"  kexec --verify -D DIR           check an image set as amber kexec does\n"
		"  swrk FD                         answer CRIU's RPC on socket FD (runc's\n"
		"                                  --criu, libcriu): docs/rpc.md\n"
		"  service --address PATH          the same on a unix socket, for root\n"
		"                                  and amber's own user\n"
		"\n"
		"SECURITY: --token-file F (shared secret, file mode 0600), and/or TLS:\n"
		"  server: --tls-cert C --tls-key K [--tls-cacert CA (require client certs)]\n"
		"  client: --tls [--tls-cacert CA] [--tls-cert C --tls-key K] [--tls-no-cn-verify]\n"
		"  neither: plain CRIU protocol, unauthenticated (stock CRIU interoperates)\n"
		"\n"
		"  --version, -V                   the CRIU version amber stands in for, as\n"
		"                                  criu --version prints it\n"
		"\n"
		"common options: -v N or -vN (0..4, default 2; -v alone: 4), -o LOG (default stderr)\n"
		"exit status: 0 done, 1 amber failed, 2 bad usage (restore: see above)\n");
}

/*
 * The soft RLIMIT_NOFILE up to the hard one, which needs no privilege: a
 * restore holds the tree's files again as service fds above its highest
 * fd, more than a shell's usual 1024 for a tree of many files. The
 * restored tasks get their saved limits back.
 */
static void raise_nofile(void)
{
	struct rlimit r;

	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int main(int argc, char **argv)
{
	struct cli_common co = { .verbosity = AMBER_LOG_WARN };
	int ret;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	/* As `criu --version`: tools installed against CRIU parse the first line. */
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("Version: %d.%d\namber: CRIU-compatible images, CLI and RPC\n",
		       RPC_CRIU_MAJOR, RPC_CRIU_MINOR);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].name))
			continue;
		for (int a = 2; a < argc && strcmp(argv[a], "--"); a++) {
			if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
				usage(stdout);
				return CLI_EXIT_OK;
			}
		}
		raise_nofile();
		ret = verbs[i].run(argc - 1, argv + 1, &co);
		amber_log_close();
		return ret;
	}
	fprintf(stderr, "amber: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
