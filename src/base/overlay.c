// SPDX-License-Identifier: MIT
/* overlayfs mount options: the layer directories (base/overlay.h). */
#include <errno.h>
#include <string.h>

#include "base/overlay.h"
#include "base/util.h"

static const char *const layer_keys[] = {"lowerdir", "upperdir", "workdir", "lowerdir+",
					 "datadir+"};

static const char *layer_key(const char *opt, const char **val)
{
	for (size_t i = 0; i < sizeof(layer_keys) / sizeof(layer_keys[0]); i++) {
		size_t n = strlen(layer_keys[i]);

		if (!strncmp(opt, layer_keys[i], n) && opt[n] == '=') {
			*val = opt + n + 1;
			return layer_keys[i];
		}
	}
	return NULL;
}

int ovl_for_each_layer(const char *opts, int (*fn)(const char *key, const char *path, void *arg),
		       void *arg)
{
	cleanup_free char *copy = strdup(opts);
	char *opt, *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	/* An escaped ',' is \054 in mountinfo: a plain ',' always separates. */
	for (opt = strtok_r(copy, ",", &save); opt && !ret; opt = strtok_r(NULL, ",", &save)) {
		const char *val, *key = layer_key(opt, &val);
		char *dirs, *dir, *dsave = NULL;

		if (!key)
			continue;
		if (strcmp(key, "lowerdir")) {
			ret = fn(key, val, arg);
			continue;
		}
		/* A:B::C, the layers after "::" data-only: empty parts are separators. */
		dirs = (char *)val;
		for (dir = strtok_r(dirs, ":", &dsave); dir && !ret;
		     dir = strtok_r(NULL, ":", &dsave))
			ret = fn(key, dir, arg);
	}
	return ret;
}

bool ovl_path_ok(const char *path)
{
	return path[0] == '/' && !strchr(path, '\\');
}
