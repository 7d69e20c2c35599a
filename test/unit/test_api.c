// SPDX-License-Identifier: MIT
/*
 * The public API (include/amber.h) as a caller sees it: sized option
 * structs (short ones read as zeros, longer ones refused only when they
 * set something unknown), 0/-errno returns, and no output but the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "amber.h"

static int failed;

static void check(int ok, const char *name, const char *fmt, int got)
{
	if (ok) {
		printf("ok %s\n", name);
		return;
	}
	printf("FAIL %s: ", name);
	printf(fmt, got);
	printf("\n");
	failed++;
}

/* A caller built against a later amber.h: one more option at the end. */
struct restore_opts_v2 {
	struct amber_restore_opts v1;
	long new_option;
};

int main(void)
{
	struct restore_opts_v2 big = { .v1 = { .sz = sizeof(big), .images_dir = "/nonexistent" } };
	struct amber_restore_opts shortopts = { .sz = sizeof(size_t) };
	AMBER_OPTS(amber_restore_opts, missing, .images_dir = "/nonexistent/amber-test");
	struct amber_feature f;
	int ret, err_pipe[2], saved_stderr = dup(2);
	char buf[256];
	ssize_t n;

	/* Catch anything the library writes to stderr behind the log's back. */
	if (pipe2(err_pipe, O_NONBLOCK) || dup2(err_pipe[1], 2) < 0)
		return 1;

	/* Everything the library says goes to this log, nothing to stdout/stderr. */
	ret = amber_log_open("/dev/null", AMBER_LOG_DEBUG, 0);
	check(ret == 0, "log opens", "ret %d", ret);
	ret = amber_log_open("/nonexistent/dir/log", AMBER_LOG_DEBUG, 0);
	check(ret == -ENOENT, "a log that can't open is -errno", "ret %d", ret);
	amber_log_open("/dev/null", AMBER_LOG_DEBUG, 0);

	ret = amber_restore(NULL, NULL, NULL);
	check(ret == -EINVAL, "NULL options", "ret %d", ret);
	ret = amber_restore(&(struct amber_restore_opts){ .sz = 0 }, NULL, NULL);
	check(ret == -EINVAL, "size 0 is refused", "ret %d", ret);
	ret = amber_restore(&shortopts, NULL, NULL);
	check(ret == -EINVAL, "a short struct reads as zeros (no images dir)", "ret %d", ret);
	ret = amber_restore(&missing, NULL, NULL);
	check(ret == -ENOENT, "missing images dir is -ENOENT", "ret %d", ret);
	big.new_option = 1;
	ret = amber_restore(&big.v1, NULL, NULL);
	check(ret == -E2BIG, "an unknown option set is -E2BIG", "ret %d", ret);
	big.new_option = 0;
	ret = amber_restore(&big.v1, NULL, NULL);
	check(ret == -ENOENT, "unknown trailing zeros are accepted", "ret %d", ret);

	ret = amber_dump(&(struct amber_dump_opts){ .sz = sizeof(struct amber_dump_opts) });
	check(ret == -EINVAL, "dump without pid", "ret %d", ret);
	ret = amber_dump(&(struct amber_dump_opts){ .sz = sizeof(struct amber_dump_opts),
						    .pid = 1, .images_dir = "/tmp",
						    .pre_dump_mode = AMBER_PRE_DUMP_READ });
	check(ret == -EINVAL, "pre-dump mode on dump", "ret %d", ret);
	ret = amber_page_server(&(struct amber_page_server_opts){
		.sz = sizeof(struct amber_page_server_opts), .ps.port = 70000 });
	check(ret == -EINVAL, "port out of range", "ret %d", ret);

	ret = amber_feature_lookup("no-such-feature");
	check(ret == -ENOENT, "unknown feature", "ret %d", ret);
	ret = amber_feature_lookup("uffd");
	check(ret >= 0 && ret < amber_feature_count(), "feature lookup", "ret %d", ret);
	ret = amber_feature_probe(amber_feature_count(), &f);
	check(ret == -EINVAL, "probe past the last feature", "ret %d", ret);
	ret = amber_feature_probe(amber_feature_lookup("uffd"), &f);
	check(ret == 0 && !strcmp(f.name, "uffd"), "probe names the feature", "ret %d", ret);

	amber_log_close();
	n = read(err_pipe[0], buf, sizeof(buf) - 1);
	dup2(saved_stderr, 2);
	check(n < 0 && errno == EAGAIN, "nothing written to stderr with the log in a file",
	      "%d bytes", (int)n);
	printf("test_api: %s\n", failed ? "FAIL" : "ok");
	return failed ? 1 : 0;
}
