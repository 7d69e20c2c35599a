// SPDX-License-Identifier: MIT
/*
 * amber kexec -t PID --pkram NAME --kernel BZIMAGE: carry a tree across a
 * kernel update in memory (docs/pkram.md). amber kexec --verify -D DIR
 * checks an image set as the workflow does, without kexec.
 */
#include <stdlib.h>

#include "cli/cli.h"

/* as many as amber kexec takes (KEXEC_MOUNTS_MAX) */
#define KEXEC_CLI_MOUNTS_MAX 8

enum {
	OPT_PKRAM = 0x200,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_APPEND,
	OPT_NO_REBOOT,
	OPT_VERIFY,
	OPT_PRESERVE_MOUNT,
	OPT_PREV_IMAGES_DIR,
};

int cli_kexec(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = {
		{ "tree", required_argument, 0, 't' },
		{ "pkram", required_argument, 0, OPT_PKRAM },
		{ "kernel", required_argument, 0, OPT_KERNEL },
		{ "initrd", required_argument, 0, OPT_INITRD },
		{ "append", required_argument, 0, OPT_APPEND },
		{ "no-reboot", no_argument, 0, OPT_NO_REBOOT },
		{ "verify", no_argument, 0, OPT_VERIFY },
		{ "preserve-mount", required_argument, 0, OPT_PRESERVE_MOUNT },
		{ "prev-images-dir", required_argument, 0, OPT_PREV_IMAGES_DIR },
		{ "images-dir", required_argument, 0, 'D' },
		CLI_TREE_LONG_OPTS,
		{ "skip-in-flight", no_argument, 0, OPT_SKIP_IN_FLIGHT },
		{ 0 },
	};
	AMBER_OPTS(amber_kexec_opts, o);
	AMBER_OPTS(amber_kexec_verify_opts, v);
	const struct cli_tree tree = CLI_TREE_OF(o);
	const char *own[KEXEC_CLI_MOUNTS_MAX + 1] = { NULL };
	bool verify = false;
	int c, ret, nr_own = 0;

	while ((c = getopt_long(argc, argv, "t:D:jlv::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		ret = cli_tree_opt("kexec", c, &tree);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		switch (c) {
		case 't':
			o.pid = atoi(optarg);
			break;
		case OPT_PKRAM:
			o.pkram = optarg;
			break;
		case OPT_KERNEL:
			o.kernel = optarg;
			break;
		case OPT_INITRD:
			o.initrd = optarg;
			break;
		case OPT_APPEND:
			o.append = optarg;
			break;
		case OPT_NO_REBOOT:
			o.no_reboot = true;
			break;
		case OPT_VERIFY:
			verify = true;
			break;
		case OPT_PRESERVE_MOUNT:
			if (nr_own == KEXEC_CLI_MOUNTS_MAX)
				return cli_usage("kexec", "at most %d --preserve-mount",
						 KEXEC_CLI_MOUNTS_MAX);
			own[nr_own++] = optarg;
			o.preserve_mounts = own;
			break;
		case OPT_PREV_IMAGES_DIR:
			o.prev_images_dir = optarg;
			break;
		case 'D':
			v.images_dir = optarg;
			break;
		case OPT_SKIP_IN_FLIGHT:
			o.skip_in_flight = true;
			break;
		default:
			return cli_usage("kexec", NULL);
		}
	}
	if (optind < argc)
		return cli_usage("kexec", "unexpected argument '%s'", argv[optind]);
	if (verify) {
		if (!v.images_dir || o.pid || o.pkram || o.kernel || o.prev_images_dir)
			return cli_usage("kexec", "--verify takes -D DIR only");
		if (!cli_log_open(co))
			return CLI_EXIT_FAIL;
		return cli_result("kexec", amber_kexec_verify(&v));
	}
	if (v.images_dir)
		return cli_usage("kexec", "-D belongs to --verify: the images go into the "
					  "store --pkram NAME");
	if (o.pid <= 0 || !o.pkram || !o.kernel)
		return cli_usage("kexec", "-t PID, --pkram NAME and --kernel BZIMAGE are required");
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("kexec", amber_kexec(&o));
}
