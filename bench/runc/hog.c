// SPDX-License-Identifier: MIT
/* A container's process holding MIB MiB of touched memory (bench/runc). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t len = (size_t)atoi(argc > 1 ? argv[1] : "1024") << 20;
	char *p = malloc(len);

	if (!p)
		return 1;
	for (size_t i = 0; i < len; i += 4096)
		p[i] = (char)(i >> 12) | 1;
	for (;;)
		pause();
}
