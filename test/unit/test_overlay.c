// SPDX-License-Identifier: MIT
/*
 * Unit test of the overlayfs option parser (src/base/overlay.h): the
 * layer directories of mountinfo's superblock options as the kernel shows
 * them (several lower layers, data-only ones after "::", the new mount
 * API's lowerdir+= and datadir+=, escaped characters), and which paths
 * amber can name again.
 */
#define LOG_PREFIX "test: "
#include "base/overlay.h"
#include "unit.h"

struct collected {
	char text[512];
	int stop_at, seen;
};

static int collect(const char *key, const char *path, void *arg)
{
	struct collected *c = arg;
	size_t n = strlen(c->text);

	snprintf(c->text + n, sizeof(c->text) - n, "%s%s=%s", n ? " " : "", key, path);
	return ++c->seen == c->stop_at ? -EXDEV : 0;
}

static const struct {
	const char *name, *opts, *want;
} cases[] = {
    {"plain", "lowerdir=/l,upperdir=/u,workdir=/w,uuid=on",
     "lowerdir=/l upperdir=/u workdir=/w"},
    {"several lower", "lowerdir=/a:/b:/c,redirect_dir=on", "lowerdir=/a lowerdir=/b lowerdir=/c"},
    {"data-only", "lowerdir=/a::/d", "lowerdir=/a lowerdir=/d"},
    {"new api", "lowerdir+=/a,lowerdir+=/b,datadir+=/d,upperdir=/u,workdir=/w",
     "lowerdir+=/a lowerdir+=/b datadir+=/d upperdir=/u workdir=/w"},
    {"escaped", "lowerdir=/x\\134\\054y:/b", "lowerdir=/x\\134\\054y lowerdir=/b"},
    {"no layers", "xino=off,index=off", ""},
    {"not a prefix", "lowerdirx=/a,upperdirs=/b", ""},
};

int main(void)
{
	unit_init();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collected c = {0};
		int ret = ovl_for_each_layer(cases[i].opts, collect, &c);

		unit_check(cases[i].name, !ret && !strcmp(c.text, cases[i].want),
			   "ret %d, got \"%s\", want \"%s\"", ret, c.text, cases[i].want);
	}
	{
		struct collected c = {.stop_at = 2};
		int ret = ovl_for_each_layer("lowerdir=/a:/b:/c,upperdir=/u", collect, &c);

		unit_check("stops at the first error", ret == -EXDEV && c.seen == 2,
			   "ret %d, seen %d", ret, c.seen);
	}
	unit_check("absolute path", ovl_path_ok("/var/lib/x"), "refused");
	unit_check("relative path refused", !ovl_path_ok("l/ABC"), "accepted");
	unit_check("escaped path refused", !ovl_path_ok("/a\\054b"), "accepted");
	return unit_done("test_overlay");
}
