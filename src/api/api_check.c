// SPDX-License-Identifier: MIT
/* The kernel-feature queries of amber.h (amber check). */
#define LOG_PREFIX "api: "
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "base/kerndat.h"
#include "mem/track.h"

int amber_feature_count(void)
{
	return KD_NR_FEATURES;
}

int amber_feature_lookup(const char *name)
{
	int f = name ? kd_lookup(name) : -1;

	return f < 0 ? -ENOENT : f;
}

int amber_feature_probe(int index, struct amber_feature *out)
{
	struct kerndat kd;

	if (index < 0 || index >= KD_NR_FEATURES || !out)
		return -EINVAL;
	memset(&kd, 0, sizeof(kd));
	kerndat_probe_one(&kd, index);
	out->name = kd_name(index);
	out->ok = kd.f[index].ok;
	snprintf(out->detail, sizeof(out->detail), "%s", kd.f[index].detail);
	return 0;
}

int amber_features_probe(struct amber_feature *out, int nr)
{
	struct kerndat kd;

	if (!out || nr < KD_NR_FEATURES)
		return -EINVAL;
	kerndat_probe(&kd);
	for (int i = 0; i < KD_NR_FEATURES; i++) {
		out[i].name = kd_name(i);
		out[i].ok = kd.f[i].ok;
		snprintf(out[i].detail, sizeof(out[i].detail), "%s", kd.f[i].detail);
	}
	return 0;
}

int amber_track_mem_auto(char *kind, size_t kind_len, char *why, size_t why_len)
{
	struct tracker tr;
	int ret = track_select(&tr, "auto", why, why_len);

	snprintf(kind, kind_len, "%s", ret ? "nothing" : track_kind_name(tr.kind));
	return ret < 0 ? ret : 0;
}
