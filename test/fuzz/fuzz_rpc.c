// SPDX-License-Identifier: MIT
/*
 * CRIU's RPC request parser (rpc/req.c): rpc_parse_req() on the input as
 * one SOCK_SEQPACKET packet from the caller, then rpc_check_opts() on
 * what it accepted, under each request type's rules. Nothing here runs
 * a request (a dump would touch a process).
 * Input: the packet's bytes (a criu_req, or anything).
 */
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "rpc/rpc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const CriuReqType types[] = {
		CRIU_REQ_TYPE__DUMP, CRIU_REQ_TYPE__PRE_DUMP,
		CRIU_REQ_TYPE__RESTORE, CRIU_REQ_TYPE__PAGE_SERVER,
	};
	struct rpc_session s = { .sk = -1 };
	CriuReq *req;

	if (size > RPC_MAX_MSG)
		return 0;
	if (rpc_parse_req(&s, data, size, &req)) {
		if (!s.err[0] || !memchr(s.err, 0, sizeof(s.err)))
			__builtin_trap(); /* a refusal must say why */
		return 0;
	}
	rpc_check_opts(&s, req);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		CriuReqType t = req->type;

		req->type = types[i];
		rpc_check_opts(&s, req);
		req->type = t;
	}
	criu_req__free_unpacked(req, NULL);
	return 0;
}
