// SPDX-License-Identifier: MIT
/*
 * Drives the page-server GET client (src/pageserver/client.h) for the tests:
 *   ps_get [-T TOKEN] [--tls CA] ADDR PORT REQ [REQ...]
 *   REQ = PID:VADDR:NR (ps_client_get_pages), or sSHMID:OFF:NR
 *         (ps_client_get_shmem_pages); VADDR and OFF in hex
 * For each request, prints "PID VADDR NR RESULT" or "SHMID OFF NR RESULT"
 * (RESULT = 0 or -errno) on stderr and writes the NR pages it got to stdout.
 * A failed connect prints "connect -ERRNO (message)" and exits 3.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "pageserver/client.h"

int main(int argc, char **argv)
{
	struct ps_client_opts o = {.size = sizeof(o)};
	struct ps_client *c;
	int i = 1;

	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-T")) {
			o.token_file = argv[i + 1];
		} else if (!strcmp(argv[i], "--tls")) {
			o.tls = true;
			o.tls_cacert = argv[i + 1];
		} else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (argc - i < 3)
		return 2;
	log_init(NULL, 2, 0);
	o.address = argv[i];
	o.port = atoi(argv[i + 1]);
	c = ps_client_connect(&o);
	if (!c) {
		int err = errno;

		fprintf(stderr, "connect %d (%s)\n", -err, strerror(err));
		return 3;
	}
	for (i += 2; i < argc; i++) {
		bool shmem = argv[i][0] == 's';
		unsigned long long id, va;
		unsigned nr;
		void *buf;
		int ret;

		if (sscanf(argv[i] + shmem, "%llu:%llx:%u", &id, &va, &nr) != 3)
			return 2;
		buf = malloc((size_t)nr * 4096 + 1);
		if (!buf)
			return 1;
		if (shmem)
			ret = ps_client_get_shmem_pages(c, id, va, nr, buf);
		else
			ret = ps_client_get_pages(c, (int)id, va, nr, buf);
		fprintf(stderr, "%llu %llx %u %d\n", id, va, nr, ret);
		if (ret == 0 || ret == -ENOENT)
			fwrite(buf, 4096, nr, stdout);
		free(buf);
	}
	ps_client_close(c);
	return 0;
}
