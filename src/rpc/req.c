// SPDX-License-Identifier: MIT
/* Parsing a request and checking its options against what amber does. */
#define LOG_PREFIX "rpc: "
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "rpc/rpc.h"

#define ERR(s, ...) snprintf((s)->err, sizeof((s)->err), __VA_ARGS__)

int rpc_parse_req(struct rpc_session *s, const uint8_t *buf, size_t len, CriuReq **out)
{
	CriuReq *req;

	*out = NULL;
	req = criu_req__unpack(NULL, len, buf);
	if (!req) {
		ERR(s, "malformed request (%zu bytes): not a criu_req message", len);
		return -EBADMSG;
	}
	/* A field amber's rpc.proto lacks is an option it would ignore. */
	if (req->base.n_unknown_fields || (req->opts && req->opts->base.n_unknown_fields)) {
		ERR(s, "request has field number %u, unknown to amber",
		    req->base.n_unknown_fields ? req->base.unknown_fields[0].tag
					       : req->opts->base.unknown_fields[0].tag);
		criu_req__free_unpacked(req, NULL);
		return -EBADMSG;
	}
	if (!protobuf_c_enum_descriptor_get_value(&criu_req_type__descriptor, req->type)) {
		ERR(s, "unknown request type %d", req->type);
		criu_req__free_unpacked(req, NULL);
		return -EBADMSG;
	}
	*out = req;
	return 0;
}

/*
 * What each request may set. Harmless ones change nothing amber would do
 * differently (docs/rpc.md says why for each); the rest are honoured.
 */
enum { F_DUMP = 1, F_PRE = 2, F_RST = 4, F_PS = 8, F_ALL = 15 };

static const struct opt_use {
	const char *name;
	unsigned reqs;
} opt_uses[] = {
	{ "images_dir_fd", F_ALL },
	{ "pid", F_DUMP | F_PRE },
	{ "leave_running", F_DUMP },
	{ "ext_unix_sk", F_DUMP | F_RST },
	{ "shell_job", F_DUMP | F_RST },
	{ "file_locks", F_DUMP | F_RST },
	{ "tcp_established", F_DUMP | F_PRE | F_RST },
	{ "tcp_close", F_RST },
	{ "tcp_skip_in_flight", F_DUMP },
	{ "network_lock", F_DUMP | F_RST },
	{ "log_level", F_ALL },
	{ "log_file", F_ALL },
	{ "ps", F_DUMP | F_PRE | F_PS },
	{ "notify_scripts", F_ALL },
	{ "parent_img", F_DUMP | F_PRE | F_PS },
	{ "track_mem", F_DUMP | F_PRE },
	{ "auto_dedup", F_DUMP | F_PRE },
	{ "work_dir_fd", F_ALL },
	{ "pre_dump_mode", F_PRE },
	{ "tls_cacert", F_DUMP | F_PRE | F_PS },
	{ "tls_cert", F_DUMP | F_PRE | F_PS },
	{ "tls_key", F_DUMP | F_PRE | F_PS },
	{ "tls", F_DUMP | F_PRE | F_PS },
	{ "tls_no_cn_verify", F_DUMP | F_PRE | F_PS },
	/* Harmless: */
	{ "cpu_cap", F_ALL }, /* amber always checks the images' FPU state fits this CPU */
	{ "timeout", F_ALL }, /* amber's freeze has no time limit to tune */
	{ "lazy_pages", F_DUMP | F_RST },
	{ "status_fd", F_DUMP }, /* with lazy_pages: written once serving */
	/* Containers (docs/namespaces.md): */
	{ "root", F_DUMP | F_PRE | F_RST },
	{ "ext_mnt", F_DUMP | F_PRE | F_RST },
	{ "external", F_DUMP | F_PRE | F_RST },
	{ "veths", F_RST },
	{ "manage_cgroups", F_DUMP | F_PRE | F_RST },
	{ "manage_cgroups_mode", F_DUMP | F_PRE | F_RST },
	{ "cg_root", F_RST },
	{ "freeze_cgroup", F_DUMP | F_PRE },
	{ "empty_ns", F_DUMP | F_PRE | F_RST },
	{ "rst_sibling", F_RST },
	/* runc's stdio pipes for the restored container (conmon's, with podman) */
	{ "inherit_fd", F_RST },
	/* Acted on by a restore only (the restored pty master to the caller). */
	{ "orphan_pts_master", F_DUMP | F_PRE | F_RST },
	/*
	 * runc sets both on every restore. amber opens device files by their
	 * path in the restored mounts, which is what evasive_devices allows;
	 * a pty whose master was outside the tree is refused by the images'
	 * check, so no master would ever be sent back.
	 */
	{ "evasive_devices", F_RST },
};

/* Is field @f of @m set to something other than its default (or false)? */
static bool opt_requested(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *p = (const char *)m + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)((const char *)m + f->quantifier_offset) > 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return *(char *const *)p && **(char *const *)p;
	case PROTOBUF_C_TYPE_MESSAGE:
	case PROTOBUF_C_TYPE_BYTES:
		return f->type == PROTOBUF_C_TYPE_MESSAGE ? *(void *const *)p != NULL
							  : ((const ProtobufCBinaryData *)p)->len > 0;
	default:
		break;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
		return false;
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_ENUM:
		return f->default_value ? *(const uint32_t *)p != *(const uint32_t *)f->default_value
					: *(const uint32_t *)p != 0;
	default:
		return true;
	}
}

static unsigned req_bit(CriuReqType t)
{
	switch (t) {
	case CRIU_REQ_TYPE__DUMP:
		return F_DUMP;
	case CRIU_REQ_TYPE__PRE_DUMP:
		return F_PRE;
	case CRIU_REQ_TYPE__RESTORE:
		return F_RST;
	case CRIU_REQ_TYPE__PAGE_SERVER:
		return F_PS;
	default:
		return 0;
	}
}

int rpc_check_opts(struct rpc_session *s, const CriuReq *req)
{
	const ProtobufCMessageDescriptor *d = &criu_opts__descriptor;
	unsigned bit = req_bit(req->type);
	size_t off = 0;

	if (!req->opts)
		return 0;
	/* Every refused option, so that the caller learns them all at once. */
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool ok = false;

		if (!opt_requested(&req->opts->base, f))
			continue;
		for (size_t j = 0; j < sizeof(opt_uses) / sizeof(opt_uses[0]); j++)
			if (!strcmp(opt_uses[j].name, f->name))
				ok = opt_uses[j].reqs & bit;
		/* runc names its default config file whether or not it exists. */
		if (!strcmp(f->name, "config_file") && access(req->opts->config_file, F_OK))
			ok = true;
		if (ok)
			continue;
		if (!off)
			off = snprintf(s->err, sizeof(s->err), "options amber does not support here:");
		if (off < sizeof(s->err))
			off += snprintf(s->err + off, sizeof(s->err) - off, " %s", f->name);
	}
	return off ? -EOPNOTSUPP : 0;
}
