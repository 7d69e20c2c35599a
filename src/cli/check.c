// SPDX-License-Identifier: MIT
/* amber check [--feature NAME]: what this kernel offers amber. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static int check_one(const char *name)
{
	struct amber_feature f;
	int i = amber_feature_lookup(name);

	if (i < 0) {
		fprintf(stderr, "unknown feature %s; known:", name);
		for (int k = 0; k < amber_feature_count() && !amber_feature_probe(k, &f); k++)
			fprintf(stderr, " %s", f.name);
		fprintf(stderr, "\n");
		return CLI_EXIT_USAGE;
	}
	if (amber_feature_probe(i, &f))
		return CLI_EXIT_FAIL;
	printf("%-16s %-4s %s\n", f.name, f.ok ? "yes" : "no", f.detail);
	return f.ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int check_all(void)
{
	int nr = amber_feature_count();
	struct amber_feature *f = calloc(nr, sizeof(*f));
	char kind[32], why[512];

	if (!f || amber_features_probe(f, nr)) {
		free(f);
		return CLI_EXIT_FAIL;
	}
	printf("%-16s %-4s %s\n", "FEATURE", "OK", "DETAIL");
	for (int i = 0; i < nr; i++)
		printf("%-16s %-4s %s\n", f[i].name, f[i].ok ? "yes" : "no", f[i].detail);
	free(f);
	amber_track_mem_auto(kind, sizeof(kind), why, sizeof(why));
	printf("\n--track-mem=auto uses: %s\n  because %s\n", kind, why);
	return CLI_EXIT_OK;
}

int cli_check(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = { { "feature", required_argument, 0, 'f' }, { 0 } };
	const char *feature = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "v::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		if (c != 'f')
			return cli_usage("check", NULL);
		feature = optarg;
	}
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return feature ? check_one(feature) : check_all();
}
