/* SPDX-License-Identifier: MIT */
#ifndef AMBER_CLI_H
#define AMBER_CLI_H

/*
 * The amber command line: one file per verb, each parsing its options
 * into the verb's option struct of amber.h and calling libamber. Only the
 * CLI prints to stdout/stderr (besides the log) and turns results into
 * exit statuses:
 *
 *   0      success
 *   1      amber failed (the log says why)
 *   2      bad usage (the message says which option)
 *   restore without -d: the restored root's own exit status (128 + N if
 *   a signal N killed it), and 125 when amber itself failed, as
 *   podman run and env(1) do.
 */
#include <getopt.h>
#include <stdbool.h>

#include "amber.h"

#define CLI_EXIT_OK	     0
#define CLI_EXIT_FAIL	     1
#define CLI_EXIT_USAGE	     2
#define CLI_EXIT_RESTORE_FAIL 125

struct cli_common {
	int verbosity;
	const char *log_file;
	bool unprivileged; /* --unprivileged (CRIU's): checked by cli_log_open() */
};

/* Long options of page-server security (and their values). */
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
	OPT_NETWORK_LOCK,
	OPT_TCP_ESTABLISHED,
	OPT_TCP_CLOSE,
	OPT_SKIP_IN_FLIGHT,
	OPT_PIDFILE,
	OPT_PKRAM_COPY,
	OPT_ROOT,
	OPT_EXT_MOUNT_MAP,
	OPT_EXTERNAL,
	OPT_VETH_PAIR,
	OPT_MANAGE_CGROUPS,
	OPT_CGROUP_ROOT,
	OPT_FREEZE_CGROUP,
	OPT_EMPTY_NS,
	OPT_UNPRIVILEGED,
	OPT_STATUS_FD,
	OPT_INHERIT_FD,
};

/* Containers: CRIU's options for a tree in its own mounts and cgroups. */
#define CLI_CONTAINER_LONG_OPTS                                              \
	{ "root", required_argument, 0, OPT_ROOT },                         \
	{ "ext-mount-map", required_argument, 0, OPT_EXT_MOUNT_MAP },       \
	{ "external", required_argument, 0, OPT_EXTERNAL },                 \
	{ "veth-pair", required_argument, 0, OPT_VETH_PAIR },               \
	{ "manage-cgroups", optional_argument, 0, OPT_MANAGE_CGROUPS },     \
	{ "cgroup-root", required_argument, 0, OPT_CGROUP_ROOT },           \
	{ "freeze-cgroup", required_argument, 0, OPT_FREEZE_CGROUP },       \
	{ "empty-ns", required_argument, 0, OPT_EMPTY_NS }

struct cli_container {
	const char *root;
	struct amber_ext_mount *ext;
	size_t nr_ext;
	struct amber_veth *veths; /* --external veth[IN]:OUT[@BR], --veth-pair IN=OUT[@BR] */
	size_t nr_veths;
	enum amber_manage_cgroups cgroups;
	const char *cgroup_root;
	const char *freeze_cgroup;
	const char *ext_netns_key; /* --external net[INO]:KEY (dump) */
	uint64_t ext_netns_ino;
};

/*
 * One container option into @ct: 1 if @c was one, 0 if not, -1 (after a
 * usage message for @verb) if its argument is wrong.
 */
int cli_container_opt(const char *verb, int c, struct cli_container *ct);

/*
 * What dump, pre-dump, restore and kexec all take, by CRIU's names: which
 * resources the tree may hold, and how its network is locked.
 */
#define CLI_TREE_LONG_OPTS                                                   \
	{ "shell-job", no_argument, 0, 'j' },                               \
	{ "ext-unix-sk", no_argument, 0, 'X' },                             \
	{ "file-locks", no_argument, 0, 'l' },                              \
	{ "tcp-established", no_argument, 0, OPT_TCP_ESTABLISHED },         \
	{ "network-lock", required_argument, 0, OPT_NETWORK_LOCK }

/* Where those options go: the fields of one verb's option struct. */
struct cli_tree {
	bool *shell_job, *ext_unix_sk, *file_locks, *tcp_established;
	enum amber_network_lock *network_lock;
};
/* The struct cli_tree of option struct @o (each verb's has these fields). */
#define CLI_TREE_OF(o) \
	{ &(o).shell_job, &(o).ext_unix_sk, &(o).file_locks, &(o).tcp_established, &(o).network_lock }

/*
 * One of CLI_TREE_LONG_OPTS into @t: 1 if @c was one, 0 if not, -1 (after
 * a usage message for @verb) if its argument is wrong.
 */
int cli_tree_opt(const char *verb, int c, const struct cli_tree *t);

/*
 * CRIU's --unprivileged. amber needs no flag to run without root: each step
 * checks what it needs. Given, it refuses at once a caller holding neither
 * CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN, instead of failing half-way.
 */
#define CLI_UNPRIV_LONG_OPT { "unprivileged", no_argument, 0, OPT_UNPRIVILEGED }

#define CLI_SEC_LONG_OPTS                                        \
	{ "token-file", required_argument, 0, OPT_TOKEN },      \
	{ "tls", no_argument, 0, OPT_TLS },                     \
	{ "tls-cert", required_argument, 0, OPT_TLS_CERT },     \
	{ "tls-key", required_argument, 0, OPT_TLS_KEY },       \
	{ "tls-cacert", required_argument, 0, OPT_TLS_CACERT }, \
	{ "tls-no-cn-verify", no_argument, 0, OPT_TLS_NO_CN }

/* -v[N], -v N, -o LOG and --unprivileged; true if @c was one of them. */
bool cli_common_opt(int c, struct cli_common *co, int argc, char **argv);
/* A whole decimal number @s in [@min, @max] into *@out; false (*@out untouched) if not. */
bool cli_int_arg(const char *s, long min, long max, int *out);
/* --address, --port and the security options; true if @c was one. */
bool cli_endpoint_opt(int c, struct amber_ps_endpoint *ep);
/* Opens the log as -v/-o asked; false (after saying why) if it can't. */
bool cli_log_open(const struct cli_common *co);
/* Prints "amber VERB: MSG" and returns CLI_EXIT_USAGE. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit status of a library call's result (and the log's pointer to why). */
int cli_result(const char *verb, int ret);

int cli_check(int argc, char **argv, struct cli_common *co);
int cli_dump(int argc, char **argv, struct cli_common *co);
int cli_pre_dump(int argc, char **argv, struct cli_common *co);
int cli_dedup(int argc, char **argv, struct cli_common *co);
int cli_restore(int argc, char **argv, struct cli_common *co);
int cli_lazy_pages(int argc, char **argv, struct cli_common *co);
int cli_page_server(int argc, char **argv, struct cli_common *co);
int cli_net_unlock(int argc, char **argv, struct cli_common *co);
int cli_kexec(int argc, char **argv, struct cli_common *co);
int cli_swrk(int argc, char **argv, struct cli_common *co);
int cli_service(int argc, char **argv, struct cli_common *co);

#endif
