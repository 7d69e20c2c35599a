#!/usr/bin/python3
"""Check that amber's .proto files stay compatible with CRIU's crit.

Usage: check_crit_compat.py PROTO_PY_DIR TMP_DIR [--crit PATH]

PROTO_PY_DIR holds modules generated from amber's proto/ directory:
    protoc --proto_path=proto --python_out=PROTO_PY_DIR proto/*.proto
TMP_DIR is where sample images are written.

Two checks, both must pass (exit status 0, non-zero on any failure):
 1. schema: every message/field/enum value in amber's protos exists in
    pycriu's generated modules with the same number, type, label and
    referenced type name, and every field CRIU marks required is present.
    The only exemptions are amber's own fields (AMBER_OWN_FIELDS) and
    fields of newer CRIU versions (NEWER_CRIU_FIELDS).
 2. crit: a sample image of each kind amber writes is built (magic header,
    u32-length-prefixed entries, raw payloads where crit expects them),
    decoded with `crit decode -i FILE` and `crit decode --pretty`, and the
    decoded values are compared with what was written.

Must run under Debian's /usr/bin/python3 (google.protobuf + pycriu).
"""

import base64
import glob
import importlib
import json
import os
import quopri
import struct
import subprocess
import sys

if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

AMBER_OWN_FIELDS = {("pagemap_entry", "amber_csum"), ("pagemap_entry", "amber_csum2"),
                    ("mm_entry", "amber_track_fd"),
                    ("ipc_shm_entry", "amber_name_key"),
                    ("thread_core_entry", "amber_cpu_affinity"),
                    ("thread_core_entry", "amber_no_new_privs"),
                    ("eventfd_file_entry", "amber_semaphore"),
                    ("eventpoll_tfd_entry", "amber_file_id"),
                    ("inventory_entry", "amber_pidns_proc"),
                    # setgroups "deny" of the tree's user namespace
                    ("userns_entry", "amber_setgroups_deny"), ("userns_entry", "amber_owns_netns"),
                    # nested pid namespaces (docs/namespaces.md)
                    ("pstree_entry", "amber_pidns_level"),
                    ("pstree_entry", "amber_pidns_tids"),
                    ("pstree_entry", "amber_pidns_children"),
                    # CRIU's own, newer than Debian's 3.17 pycriu (upstream
                    # images/sk-packet.proto): optional, so 3.17 skips it.
                    ("sk_packet_entry", "ucred"),
                    # a UDP datagram's sender: the number CRIU reserves for it
                    ("sk_packet_entry", "addr"),
                    # POSIX message queue descriptors (mqueue.proto)
                    ("file_entry", "amber_mq"),
                    # an unlinked name whose inode is linked under another (reg.c)
                    ("reg_file_entry", "amber_linked_as"),
                    # an AF_INET6 socket's IP_TOS (inet.c): CRIU keeps its TCLASS only
                    ("ip_opts_entry", "amber_ipv4_tos")}
# amber's own messages and images (CRIU 4.2 has no POSIX message queues):
# crit cannot decode them; their numbers must not be CRIU's.
AMBER_OWN_MESSAGES = {"mqueue_msg", "mqueue_entry", "mqueue_file_entry"}
AMBER_OWN_ENUM_VALUES = {("fd_types", "AMBER_MQUEUE")}
AMBER_OWN_MAGICS = {"IPCNS_MQUEUE"}
NEWER_CRIU_MESSAGES = {"sk_ucred_entry",
                       # CRIU 4.x images/pidfd.proto; crit 3.17 shows such a
                       # file_entry by its id only (type and pidfd unknown to it)
                       "pidfd_entry",
                       # CRIU 4.x images/tcp-stream.proto
                       "tcp_opts_entry"}
# Fields of CRIU newer than Debian's 3.17 (same number as upstream CRIU's
# images/*.proto): checked like amber's own, crit 3.17 skips them.
NEWER_CRIU_FIELDS = {("task_core_entry", "stop_signo"),
                     ("task_core_entry", "membarrier_registration_mask"),
                     ("cg_controller_entry", "is_threaded"),
                     ("inventory_entry", "dump_criu_run_id"),
                     ("file_entry", "pidfd"),
                     ("ip_opts_entry", "pktinfo"), ("ip_opts_entry", "tos"),
                     ("ip_opts_entry", "ttl"), ("inet_sk_entry", "tcp_opts"),
                     # CRIU 4.x's 64-bit page count (upstream's "nr_pages")
                     ("pagemap_entry", "nr_pages_u64"),
                     # CRIU 4.x thread_core_entry.cg_set (a task's set, read first)
                     ("thread_core_entry", "cg_set")}
# Enum values of CRIU newer than Debian's 3.17 (same number as upstream).
NEWER_CRIU_ENUM_VALUES = {("fd_types", "PIDFD")}
AMBER_OWN_FIELDS |= NEWER_CRIU_FIELDS
# bytes fields crit prints quoted-printable instead of base64 ((criu).conv)
QUOPRI_FIELDS = {("unix_sk_entry", "name")}

# Magic numbers (same values as src/image/magic.h).
IMG_COMMON = 0x54564319
IMG_SERVICE = 0x55105940
MAGIC = {
    "INVENTORY": 0x58313116,
    "PSTREE": 0x50273030,
    "FDINFO": 0x56213732,
    "PAGEMAP": 0x56084025,
    "CORE": 0x55053847,
    "IDS": 0x54432030,
    "PIPES": 0x56513555,
    "PIPES_DATA": 0x56453709,
    "FIFO": 0x58364939,
    "FIFO_DATA": 0x59333054,
    "SIGACT": 0x55344201,
    "UNIXSK": 0x54373943,
    "ITIMERS": 0x57464056,
    "POSIX_TIMERS": 0x52603957,
    "SK_QUEUES": 0x56264026,
    "CREDS": 0x54023547,
    "REG_FILES": 0x50363636,
    "FS": 0x51403912,
    "MM": 0x57492820,
    "GHOST_FILE": 0x52583605,
    "TTY_FILES": 0x59433025,
    "TTY_INFO": 0x59453036,
    "TTY_DATA": 0x59413026,
    "RLIMIT": 0x57113925,
    "FILES": 0x56303138,
    "MEMFD_INODE": 0x48453499,
    "SECCOMP": 0x64413049,
    "UTSNS": 0x54473203,
    "USERNS": 0x55474906,
    "IPC_VAR": 0x53115007,
    "IPCNS_SHM": 0x46283044,
    "IPCNS_MSG": 0x55453737,
    "IPCNS_SEM": 0x59573019,
    "NETDEV": 0x57373951,
    "FILE_LOCKS": 0x54323616,
    "MNTS": 0x55563928,
    "CGROUP": 0x59383330,
}

PYCRIU_DUMP = r"""
import sys, json, glob, os, importlib
sys.path.insert(0, '/usr/lib/python3/dist-packages')
import pycriu.images.magic as magic
d = os.path.dirname(magic.__file__)
out = {'messages': {}, 'enums': {}, 'magic': magic.by_name}
def walk_enum(e):
    out['enums'][e.full_name] = {v.name: v.number for v in e.values}
def walk(m):
    out['messages'][m.full_name] = {
        f.name: [f.number, f.type, f.label,
                 (f.message_type or f.enum_type).full_name
                 if (f.message_type or f.enum_type) else None,
                 f.default_value if f.has_default_value else None]
        for f in m.fields}
    for e in m.enum_types: walk_enum(e)
    for n in m.nested_types: walk(n)
mods = [importlib.import_module('pycriu.images.' + os.path.basename(p)[:-3])
        for p in sorted(glob.glob(os.path.join(d, '*_pb2.py')))]
# The RPC's messages (proto/rpc.proto against pycriu.rpc_pb2).
mods.append(importlib.import_module('pycriu.rpc_pb2'))
for mod in mods:
    for m in mod.DESCRIPTOR.message_types_by_name.values(): walk(m)
    for e in mod.DESCRIPTOR.enum_types_by_name.values(): walk_enum(e)
print(json.dumps(out))
"""

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


# ---------------------------------------------------------------- schema

def load_amber(pydir):
    sys.path.insert(0, pydir)
    mods = {}
    for p in sorted(glob.glob(os.path.join(pydir, "*_pb2.py"))):
        name = os.path.basename(p)[:-3]
        mods[name] = importlib.import_module(name)
    if not mods:
        fail("no *_pb2.py modules in %s" % pydir)
    return mods


def check_schema(mods):
    criu = json.loads(subprocess.check_output(
        ["/usr/bin/python3", "-c", PYCRIU_DUMP]))
    cm, ce = criu["messages"], criu["enums"]
    for k, v in MAGIC.items():
        if criu["magic"].get(k) != v:
            fail("magic %s: ours 0x%x, pycriu %r" % (k, v, criu["magic"].get(k)))

    def check_enum(e):
        theirs = ce.get(e.full_name)
        if theirs is None:
            fail("enum %s not in CRIU" % e.full_name)
            return
        for v in e.values:
            if (e.full_name, v.name) in NEWER_CRIU_ENUM_VALUES | AMBER_OWN_ENUM_VALUES:
                if v.number in theirs.values():
                    fail("newer enum value %s.%s = %d is taken in CRIU"
                         % (e.full_name, v.name, v.number))
                continue
            if theirs.get(v.name) != v.number:
                fail("enum %s.%s = %d, CRIU %r" % (e.full_name, v.name, v.number,
                                                   theirs.get(v.name)))

    def check_msg(m):
        theirs = cm.get(m.full_name)
        if theirs is None and m.full_name in NEWER_CRIU_MESSAGES | AMBER_OWN_MESSAGES:
            return
        if theirs is None:
            fail("message %s not in CRIU" % m.full_name)
            return
        for f in m.fields:
            if (m.full_name, f.name) in AMBER_OWN_FIELDS:
                # optional or repeated: a decoder without the field skips it
                if f.label == f.LABEL_REQUIRED or \
                        any(t[0] == f.number for t in theirs.values()):
                    fail("own field %s.%s must be optional or repeated with an unused number"
                         % (m.full_name, f.name))
                continue
            ref = f.message_type or f.enum_type
            mine = [f.number, f.type, f.label, ref.full_name if ref else None,
                    f.default_value if f.has_default_value else None]
            if theirs.get(f.name) != mine:
                fail("%s.%s: ours %r, CRIU %r" % (m.full_name, f.name, mine,
                                                  theirs.get(f.name)))
        names = {f.name for f in m.fields}
        for fname, t in theirs.items():
            if t[2] == 2 and fname not in names:  # LABEL_REQUIRED
                fail("%s: CRIU-required field %s missing" % (m.full_name, fname))
        for e in m.enum_types:
            check_enum(e)
        for n in m.nested_types:
            check_msg(n)

    hdr = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "..", "src", "image", "magic.h")
    if os.path.exists(hdr):
        import re
        n = 0
        for name, val in re.findall(r"#define\s+(\w+)_MAGIC\s+(0x[0-9a-fA-F]+)",
                                    open(hdr).read()):
            key = {"IMG_COMMON": "IMG_COMMON", "IMG_SERVICE": "IMG_SERVICE",
                   "RAW_IMAGE": None}.get(name, name)
            if key is None:
                continue
            if key in AMBER_OWN_MAGICS:
                if int(val, 16) in criu["magic"].values():
                    fail("amber's own %s_MAGIC = %s is taken in CRIU" % (name, val))
                continue
            n += 1
            if criu["magic"].get(key) != int(val, 16):
                fail("image_magic.h %s_MAGIC = %s, pycriu %r"
                     % (name, val, criu["magic"].get(key)))
        print("image_magic.h: %d magic values checked against pycriu" % n)

    count = 0
    for mod in mods.values():
        for m in mod.DESCRIPTOR.message_types_by_name.values():
            check_msg(m)
            count += 1
        for e in mod.DESCRIPTOR.enum_types_by_name.values():
            check_enum(e)
    print("schema: %d top-level messages checked against pycriu" % count)


# ---------------------------------------------------------------- samples

def expect(msg):
    """What crit's non-pretty pb2dict should print for msg."""
    d = {}
    for f, v in msg.ListFields():
        if (msg.DESCRIPTOR.full_name, f.name) in AMBER_OWN_FIELDS:
            continue

        def cast(x):
            if f.type == f.TYPE_MESSAGE:
                return expect(x)
            if f.type == f.TYPE_ENUM:
                return f.enum_type.values_by_number[x].name
            if f.type == f.TYPE_BYTES:
                if (msg.DESCRIPTOR.full_name, f.name) in QUOPRI_FIELDS:
                    return ("quopri", x)
                return ("bytes", x)
            return x
        d[f.name] = [cast(x) for x in v] if f.label == f.LABEL_REPEATED else cast(v)
    return d


def same(exp, got):
    if isinstance(exp, tuple) and exp[0] == "quopri":
        return isinstance(got, str) and quopri.decodestring(got.encode()) == exp[1]
    if isinstance(exp, tuple) and exp[0] == "bytes":
        if isinstance(got, str):
            try:
                return base64.decodebytes(got.encode()) == exp[1]
            except Exception:
                return False
        return False
    if isinstance(exp, dict):
        return isinstance(got, dict) and set(exp) == set(got) and \
            all(same(exp[k], got[k]) for k in exp)
    if isinstance(exp, list):
        return isinstance(got, list) and len(exp) == len(got) and \
            all(same(a, b) for a, b in zip(exp, got))
    return exp == got


class Image:
    def __init__(self, name, magic, head=IMG_COMMON):
        self.name, self.magic, self.head = name, magic, head
        self.blob = b""
        self.expected = []

    def add(self, msg, extra=None, expect_extra=True):
        data = msg.SerializeToString()
        self.blob += struct.pack("<I", len(data)) + data
        e = expect(msg)
        if extra is not None:
            self.blob += extra
            if expect_extra:
                e["extra"] = ("bytes", extra)
        self.expected.append(e)
        return self

    def write(self, tmp):
        path = os.path.join(tmp, self.name)
        with open(path, "wb") as f:
            if self.head is not None:
                f.write(struct.pack("<I", self.head))
            f.write(struct.pack("<I", MAGIC[self.magic]))
            f.write(self.blob)
        return path


def ipc_samples(m):
    """The SysV images, with crit's own reading of their raw payloads: a
    set's u16 values as numbers, each message's header and base64 text.
    A segment's contents are in its pagemap (in_pagemaps); crit still
    reads `size` raw bytes after the entry, which is nothing for the last
    one (so one segment decodes; more would be mixed up by crit)."""
    desc = m["ipc_desc_pb2"].ipc_desc_entry
    shm, sem, msg = m["ipc_shm_pb2"], m["ipc_sem_pb2"], m["ipc_msg_pb2"]
    out = []
    img = Image("ipcns-shm-6.img", "IPCNS_SHM").add(shm.ipc_shm_entry(
        desc=desc(key=0x414d4201, uid=0, gid=0, cuid=0, cgid=0, mode=0o640, id=70000),
        size=12388, in_pagemaps=True, amber_name_key=0x414d4201))
    img.expected[-1]["extra"] = ("bytes", b"")
    out.append(img)
    vals = [0, 1, 2, 300, 32767]
    img = Image("ipcns-sem-6.img", "IPCNS_SEM").add(sem.ipc_sem_entry(
        desc=desc(key=0x414d4204, uid=0, gid=0, cuid=0, cgid=0, mode=0o660, id=54321),
        nsems=len(vals)), struct.pack("<5H", *vals) + bytes(6), expect_extra=False)
    img.expected[-1]["extra"] = vals
    out.append(img)
    img = Image("ipcns-msg-6.img", "IPCNS_MSG")
    texts = [(3, b"first"), (1, b"second message")]
    blob = b""
    for mtype, text in texts:
        h = msg.ipc_msg(mtype=mtype, msize=len(text)).SerializeToString()
        blob += struct.pack("<I", len(h)) + h + text + bytes(-len(text) % 8)
    img.add(msg.ipc_msg_entry(
        desc=desc(key=0x414d4205, uid=0, gid=0, cuid=0, cgid=0, mode=0o620, id=99999),
        qbytes=16384, qnum=len(texts)), blob, expect_extra=False)
    img.expected[-1]["extra"] = [x for mtype, text in texts for x in
                                 ({"mtype": mtype, "msize": len(text)}, ("bytes", text))]
    out.append(img)
    return out


def build_samples(m):
    core, inv, pstree = m["core_pb2"], m["inventory_pb2"], m["pstree_pb2"]
    creds_pb, fs_pb, mm_pb = m["creds_pb2"], m["fs_pb2"], m["mm_pb2"]
    pm, fd, rf = m["pagemap_pb2"], m["fdinfo_pb2"], m["regfile_pb2"]
    pipe, pdata, fifo = m["pipe_pb2"], m["pipe_data_pb2"], m["fifo_pb2"]
    sku, skp, tty = m["sk_unix_pb2"], m["sk_packet_pb2"], m["tty_pb2"]
    ghost, sa, sig = m["ghost_file_pb2"], m["sa_pb2"], m["siginfo_pb2"]
    timer, rl = m["timer_pb2"], m["rlimit_pb2"]
    out = []

    ids = core.task_kobj_ids_entry(vm_id=1, files_id=2, fs_id=3, sighand_id=4,
                                   pid_ns_id=5, mnt_ns_id=6)
    out.append(Image("inventory.img", "INVENTORY", head=None).add(
        inv.inventory_entry(img_version=2, fdinfo_per_id=True, root_ids=ids,
                            ns_per_id=True, lsmtype=inv.NO_LSM,
                            dump_uptime=123456789)))

    out.append(Image("pstree.img", "PSTREE")
               .add(pstree.pstree_entry(pid=100, ppid=0, pgid=100, sid=100,
                                        threads=[100, 101]))
               .add(pstree.pstree_entry(pid=102, ppid=100, pgid=100, sid=100,
                                        threads=[102], amber_pidns_children=103))
               # a nested pid namespace's init (docs/namespaces.md): crit skips amber's fields
               .add(pstree.pstree_entry(pid=103, ppid=102, pgid=100, sid=100,
                                        threads=[103, 104], amber_pidns_level=1,
                                        amber_pidns_tids=[1, 2])))

    def creds():
        return creds_pb.creds_entry(
            uid=1000, gid=1000, euid=1000, egid=1000, suid=1000, sgid=1000,
            fsuid=1000, fsgid=1000, cap_inh=[0, 0], cap_prm=[0xffffffff, 0x1ff],
            cap_eff=[0, 0], cap_bnd=[0xffffffff, 0x1ff], secbits=0,
            groups=[1000, 27])

    siginfo = bytes(range(128))
    ci = core.core_entry(mtype=core.core_entry.X86_64)
    ti = ci.thread_info
    ti.clear_tid_addr = 0x7f0000001000
    g = ti.gpregs
    for i, f in enumerate(g.DESCRIPTOR.fields):
        if f.name != "mode":
            setattr(g, f.name, 0x1000 + i)
    g.ip = 0x401000
    g.sp = 0x7ffc00001000
    g.mode = m["core_x86_pb2"].NATIVE
    fp = ti.fpregs
    fp.cwd, fp.swd, fp.twd, fp.fop = 0x37f, 0, 0, 0
    fp.rip, fp.rdp, fp.mxcsr, fp.mxcsr_mask = 0, 0, 0x1f80, 0xffff
    fp.st_space.extend(range(32))
    fp.xmm_space.extend(range(64))
    fp.padding.extend([0] * 24)
    fp.xsave.xstate_bv = 7
    fp.xsave.ymmh_space.extend(range(64))
    tc = ci.tc
    tc.task_state, tc.exit_code, tc.personality, tc.flags = 1, 0, 0, 0x400100
    tc.blk_sigset = 0x10000
    tc.comm = "sample"
    for t in (tc.timers.real, tc.timers.virt, tc.timers.prof):
        t.isec, t.iusec, t.vsec, t.vusec = 1, 2, 3, 4
    for i in range(16):
        r = tc.rlimits.rlimits.add()
        r.cur, r.max = 1024 + i, 0xffffffffffffffff
    tc.signals_s.signals.add(siginfo=siginfo)
    tc.oom_score_adj = -100
    tc.loginuid = 1000
    for i in range(3):
        tc.sigactions.add(sigaction=0x401200 + i, flags=0x4000000,
                          restorer=0x401300, mask=0)
    tc.child_subreaper = False
    ci.ids.CopyFrom(ids)
    th = ci.thread_core
    th.futex_rla, th.futex_rla_len = 0x7f0000002000, 24
    th.sched_nice, th.sched_policy, th.sched_prio = -5, 0, 0
    th.blk_sigset = 0
    th.sas.ss_sp, th.sas.ss_size, th.sas.ss_flags = 0, 0, 2
    th.pdeath_sig = 9
    th.signals_p.signals.add(siginfo=siginfo[::-1])
    th.creds.CopyFrom(creds())
    th.comm = "sample"
    out.append(Image("core-100.img", "CORE").add(ci))

    out.append(Image("creds-100.img", "CREDS").add(creds()))
    out.append(Image("fs-100.img", "FS").add(
        fs_pb.fs_entry(cwd_id=7, root_id=8, umask=0o22)))

    mme = mm_pb.mm_entry(
        mm_start_code=0x400000, mm_end_code=0x401000, mm_start_data=0x402000,
        mm_end_data=0x403000, mm_start_stack=0x7ffc00000000,
        mm_start_brk=0x500000, mm_brk=0x521000, mm_arg_start=0x7ffc00001000,
        mm_arg_end=0x7ffc00001100, mm_env_start=0x7ffc00001100,
        mm_env_end=0x7ffc00001f00, exe_file_id=9, mm_saved_auxv=[33, 0x7ffd1000, 0, 0],
        dumpable=1)
    mme.vmas.add(start=0x400000, end=0x401000, pgoff=0, shmid=9, prot=5,
                 flags=2, status=0x41, fd=-1, madv=0, fdflags=0)
    mme.vmas.add(start=0x7ffc00000000, end=0x7ffc00021000, pgoff=0, shmid=0,
                 prot=3, flags=0x122, status=0x203, fd=-1)
    out.append(Image("mm-100.img", "MM").add(mme))

    out.append(Image("pagemap-100.img", "PAGEMAP")
               .add(pm.pagemap_head(pages_id=1))
               .add(pm.pagemap_entry(vaddr=0x400000, nr_pages=1, flags=4,
                                     amber_csum2=0xdeadbeefcafef00d))
               .add(pm.pagemap_entry(vaddr=0x401000, nr_pages=1, flags=4,
                                     amber_csum=0x0123456789abcdef))
               .add(pm.pagemap_entry(vaddr=0x7ffc00000000, nr_pages=33,
                                     flags=1)))

    out.append(Image("fdinfo-2.img", "FDINFO")
               .add(fd.fdinfo_entry(id=1, flags=0, type=fd.REG, fd=0))
               .add(fd.fdinfo_entry(id=2, flags=1, type=fd.PIPE, fd=3))
               .add(fd.fdinfo_entry(id=5, flags=0, type=fd.UNIXSK, fd=4)))

    fown = m["fown_pb2"].fown_entry(uid=0, euid=0, signum=0, pid_type=0, pid=0)
    reg = rf.reg_file_entry(id=1, flags=0o2, pos=42, fown=fown,
                            name="/tmp/sample", mnt_id=-1, size=4096,
                            mode=0o100644)
    skopts = m["sk_opts_pb2"].sk_opts_entry(
        so_sndbuf=212992, so_rcvbuf=212992, so_snd_tmo_sec=0,
        so_snd_tmo_usec=0, so_rcv_tmo_sec=0, so_rcv_tmo_usec=0)
    usk = sku.unix_sk_entry(id=5, ino=12345, type=1, state=1, flags=2,
                            uflags=0, backlog=0, peer=12346, fown=fown,
                            opts=skopts, name=b"", shutdown=m["sk_opts_pb2"].NONE)
    pipe_e = pipe.pipe_entry(id=2, pipe_id=777, flags=0, fown=fown)
    fifo_e = fifo.fifo_entry(id=3, pipe_id=778, regf_id=4)
    tfe = tty.tty_file_entry(id=6, tty_info_id=10, flags=2, fown=fown)
    files = Image("files.img", "FILES")
    files.add(fd.file_entry(type=fd.REG, id=1, reg=reg))
    files.add(fd.file_entry(type=fd.PIPE, id=2, pipe=pipe_e))
    files.add(fd.file_entry(type=fd.FIFO, id=3, fifo=fifo_e))
    files.add(fd.file_entry(type=fd.UNIXSK, id=5, usk=usk))
    files.add(fd.file_entry(type=fd.TTY, id=6, tty=tfe))
    mfe = m["memfd_pb2"].memfd_file_entry(id=7, flags=0o2, pos=5, fown=fown,
                                          inode_id=12)
    files.add(fd.file_entry(type=fd.MEMFD, id=7, memfd=mfe))
    efe = m["eventfd_pb2"].eventfd_file_entry(id=8, flags=0o4002, fown=fown,
                                              counter=1 << 40, amber_semaphore=True)
    files.add(fd.file_entry(type=fd.EVENTFD, id=8, efd=efe))
    sfe = m["signalfd_pb2"].signalfd_entry(id=9, flags=0o2, fown=fown,
                                           sigmask=(1 << 9) | (1 << 33))
    files.add(fd.file_entry(type=fd.SIGNALFD, id=9, sgfd=sfe))
    tme = m["timerfd_pb2"].timerfd_entry(id=10, flags=0o2, fown=fown, clockid=1,
                                         ticks=3, settime_flags=1, vsec=5,
                                         vnsec=500, isec=10, insec=0)
    files.add(fd.file_entry(type=fd.TIMERFD, id=10, tfd=tme))
    ep = m["eventpoll_pb2"]
    tgt = [ep.eventpoll_tfd_entry(id=11, tfd=3, events=0x80000001, data=0xdeadbeef,
                                  dev=0x16, inode=1234, pos=0, amber_file_id=8),
           ep.eventpoll_tfd_entry(id=11, tfd=4, events=4, data=7, amber_file_id=2)]
    epe = ep.eventpoll_file_entry(id=11, flags=0o2, fown=fown, tfd=tgt)
    files.add(fd.file_entry(type=fd.EVENTPOLL, id=11, epfd=epe))
    fsn = m["fsnotify_pb2"]
    fhe = m["fh_pb2"].fh_entry(bytes=8, type=1, handle=[0x1234] + [0] * 15,
                               path="/tmp/watched")
    wde = fsn.inotify_wd_entry(id=12, i_ino=4321, mask=0x300, ignored_mask=0,
                               s_dev=0xfe00000, wd=3, f_handle=fhe)
    ine = fsn.inotify_file_entry(id=12, flags=0o4000, fown=fown, wd=[wde])
    files.add(fd.file_entry(type=fd.INOTIFY, id=12, ify=ine))
    fmk = [fsn.fanotify_mark_entry(id=13, type=fsn.INODE, mflags=0x40, mask=0x2,
                                   ignored_mask=0x8, s_dev=0xfe00000,
                                   ie=fsn.fanotify_inode_mark_entry(i_ino=4321, f_handle=fhe)),
           fsn.fanotify_mark_entry(id=13, type=fsn.MOUNT, mflags=0, mask=0x10,
                                   ignored_mask=0, s_dev=0,
                                   me=fsn.fanotify_mount_mark_entry(mnt_id=27, path="/tmp"))]
    ffe = fsn.fanotify_file_entry(id=13, flags=0o4002, fown=fown, faflags=2,
                                  evflags=0o100000, mark=fmk)
    files.add(fd.file_entry(type=fd.FANOTIFY, id=13, ffy=ffe))
    pk = m["packet_sock_pb2"]
    ring = pk.packet_ring(block_size=8192, block_nr=4, frame_size=2048, frame_nr=16,
                          retire_tmo=0, sizeof_priv=0, features=0)
    pse = pk.packet_sock_entry(id=14, type=3, protocol=0x0300, flags=0o2, ifindex=1,
                               fown=fown, opts=skopts, version=1, reserve=16,
                               aux_data=True, orig_dev=False, vnet_hdr=False,
                               loss=False, timestamp=0, copy_thresh=0,
                               mclist=[pk.packet_mclist(index=1, type=0,
                                                        addr=bytes([1, 0, 0x5e, 0, 0, 1]))],
                               fanout=0x10042, rx_ring=ring, tx_ring=ring)
    files.add(fd.file_entry(type=fd.PACKETSK, id=14, psk=pse))
    out.append(files)
    out.append(Image("memfd.img", "MEMFD_INODE").add(
        m["memfd_pb2"].memfd_inode_entry(name="amber-memfd", uid=0, gid=0,
                                         size=8192, shmid=4321, seals=1,
                                         inode_id=12)))
    sc = m["seccomp_pb2"]
    out.append(Image("seccomp.img", "SECCOMP").add(sc.seccomp_entry(seccomp_filters=[
        sc.seccomp_filter(filter=bytes(range(8)) * 2, flags=0),
        sc.seccomp_filter(filter=b"\x06\0\0\0\0\0\xff\x7f", prev=0, flags=2)])))
    out.append(Image("utsns-5.img", "UTSNS").add(
        m["utsns_pb2"].utsns_entry(nodename="amber-ns", domainname="(none)")))
    us = m["userns_pb2"]
    out.append(Image("userns-9.img", "USERNS").add(us.userns_entry(
        uid_map=[us.uid_gid_extent(first=0, lower_first=100000, count=65536),
                 us.uid_gid_extent(first=65536, lower_first=300000, count=10)],
        gid_map=[us.uid_gid_extent(first=0, lower_first=100000, count=65536)],
        amber_setgroups_deny=True, amber_owns_netns=True)))
    out.append(Image("ipcns-var-6.img", "IPC_VAR").add(m["ipc_var_pb2"].ipc_var_entry(
        sem_ctls=[32000, 1024000000, 500, 32000], msg_ctlmax=8192, msg_ctlmnb=16384,
        msg_ctlmni=32000, auto_msgmni=0, shm_ctlmax=1 << 62, shm_ctlall=1 << 62,
        shm_ctlmni=4096, shm_rmid_forced=0, mq_queues_max=256, mq_msg_max=10,
        mq_msgsize_max=8192, mq_msg_default=10, mq_msgsize_default=8192)))
    out += ipc_samples(m)
    nd = m["netdev_pb2"]
    out.append(Image("netdev-7.img", "NETDEV").add(nd.net_device_entry(
        type=nd.LOOPBACK, ifindex=1, mtu=65536, flags=0x49, name="lo",
        address=bytes(6))))
    mnt = m["mnt_pb2"]
    out.append(Image("mountpoints-8.img", "MNTS")
               .add(mnt.mnt_entry(fstype=0, mnt_id=70, root_dev=254 << 20, parent_mnt_id=47,
                                  flags=0x200000, root="/srv/rootfs", mountpoint="/",
                                  source="/dev/vda", options="discard", sb_flags=0))
               .add(mnt.mnt_entry(fstype=mnt.TMPFS, mnt_id=87, root_dev=47, parent_mnt_id=70,
                                  flags=0x200006, root="/", mountpoint="/tmp",
                                  source="tmpfs", options="mode=1777", sb_flags=0))
               .add(mnt.mnt_entry(fstype=mnt.TMPFS, mnt_id=53, root_dev=42, parent_mnt_id=70,
                                  flags=0x2, root="/null", mountpoint="/proc/keys",
                                  source="tmpfs", options="", ext_key="/dev/null")))
    cg = m["cgroup_pb2"]
    out.append(Image("cgroup.img", "CGROUP").add(cg.cgroup_entry(sets=[
        cg.cg_set_entry(id=1, ctls=[cg.cg_member_entry(name="", path="/amber"),
                                    cg.cg_member_entry(name="name=systemd", path="/amber")])])))
    fl = m["file_lock_pb2"]
    out.append(Image("filelocks.img", "FILE_LOCKS")
               .add(fl.file_lock_entry(flag=1, type=1, pid=42, fd=3, start=0, len=100))
               .add(fl.file_lock_entry(flag=4, type=0, pid=43, fd=5, start=200, len=0))
               .add(fl.file_lock_entry(flag=8, type=0, pid=42, fd=7, start=0, len=0)))
    out.append(Image("reg-files.img", "REG_FILES").add(reg))
    out.append(Image("pipes.img", "PIPES").add(pipe_e))
    out.append(Image("fifo.img", "FIFO").add(fifo_e))
    usk2 = sku.unix_sk_entry()
    usk2.CopyFrom(usk)
    usk2.id, usk2.ino, usk2.name = 11, 12346, b"\0amber-abstract"
    usk2.file_perms.mode, usk2.file_perms.uid, usk2.file_perms.gid = 0o777, 0, 0
    out.append(Image("unixsk.img", "UNIXSK").add(usk).add(usk2))
    out.append(Image("tty.img", "TTY_FILES").add(tfe))

    payload = b"hello pipe\n" * 3
    out.append(Image("pipes-data.img", "PIPES_DATA")
               .add(pdata.pipe_data_entry(pipe_id=777, bytes=len(payload),
                                          size=65536), payload)
               .add(pdata.pipe_data_entry(pipe_id=779, bytes=1, size=4096), b"x"))
    out.append(Image("fifo-data.img", "FIFO_DATA")
               .add(pdata.pipe_data_entry(pipe_id=778, bytes=4, size=65536),
                    b"fifo"))
    pkt = b"\x00\x01packet-data\xff"
    out.append(Image("sk-queues.img", "SK_QUEUES")
               .add(skp.sk_packet_entry(id_for=5, length=len(pkt)), pkt)
               .add(skp.sk_packet_entry(id_for=5, length=3), b"abc"))

    term = tty.termios_entry(c_iflag=0x500, c_oflag=5, c_cflag=0xbf,
                             c_lflag=0x8a3b, c_line=0, c_ispeed=15,
                             c_ospeed=15, c_cc=list(range(19)))
    out.append(Image("tty-info.img", "TTY_INFO").add(tty.tty_info_entry(
        id=10, type=tty.PTY, locked=False, exclusive=False, packet_mode=False,
        sid=100, pgrp=100, rdev=0x8803, termios=term, termios_locked=term,
        winsize=tty.winsize_entry(ws_row=24, ws_col=80, ws_xpixel=0,
                                  ws_ypixel=0),
        pty=tty.tty_pty_entry(index=3))))
    out.append(Image("tty-data.img", "TTY_DATA").add(
        tty.tty_data_entry(tty_id=10, data=b"typed ahead\n")))

    content = b"ghost file content\n" * 10
    tv = m["time_pb2"].timeval
    out.append(Image("ghost-file-1.img", "GHOST_FILE").add(
        ghost.ghost_file_entry(uid=1000, gid=1000, mode=0o100600, dev=0x803,
                               ino=4242, atim=tv(tv_sec=1, tv_usec=2),
                               mtim=tv(tv_sec=3, tv_usec=4),
                               size=len(content)), content))
    gi = Image("ghost-file-2.img", "GHOST_FILE").add(
        ghost.ghost_file_entry(uid=0, gid=0, mode=0o100644, chunks=True,
                               size=8192))
    gi.add(ghost.ghost_chunk_entry(len=5, off=0), b"chunk")
    gi.add(ghost.ghost_chunk_entry(len=3, off=4096), b"end")
    out.append(gi)

    out.append(Image("sigacts-100.img", "SIGACT")
               .add(sa.sa_entry(sigaction=0x401200, flags=0x4000000,
                                restorer=0x401300, mask=0x10000))
               .add(sa.sa_entry(sigaction=0, flags=0, restorer=0, mask=0)))
    out.append(Image("itimers-100.img", "ITIMERS")
               .add(timer.itimer_entry(isec=1, iusec=500, vsec=0, vusec=250)))
    out.append(Image("posix-timers-100.img", "POSIX_TIMERS").add(
        timer.posix_timer_entry(it_id=0, clock_id=1, si_signo=14,
                                it_sigev_notify=0, sival_ptr=0, overrun=0,
                                isec=1, insec=0, vsec=0, vnsec=5000)))
    out.append(Image("rlimit-100.img", "RLIMIT")
               .add(rl.rlimit_entry(cur=1024, max=4096)))
    out.append(Image("ids-100.img", "IDS").add(ids))
    return out


def run_crit(crit, path, pretty):
    cmd = [crit, "decode", "-i", path] + (["--pretty"] if pretty else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr.decode().strip()[-400:]))
    return json.loads(p.stdout)


def check_samples(mods, tmp, crit):
    try:
        images = build_samples(mods)
    except Exception as e:
        fail("building samples: %r" % e)
        return 0
    for img in images:
        path = img.write(tmp)
        try:
            raw = run_crit(crit, path, False)
            run_crit(crit, path, True)
        except Exception as e:
            fail(str(e))
            continue
        if raw.get("magic") != img.magic:
            fail("%s: crit says magic %r, want %s" % (img.name, raw.get("magic"),
                                                       img.magic))
        got = raw.get("entries")
        if not same(img.expected, got):
            fail("%s: decoded entries differ\n  want %r\n  got  %r"
                 % (img.name, img.expected, got))
        else:
            print("ok   %-22s %-12s %d entries" % (img.name, img.magic, len(got)))
    return len(images)


def main():
    args = sys.argv[1:]
    crit = "/usr/bin/crit"
    if "--crit" in args:
        i = args.index("--crit")
        crit = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pydir, tmp = (os.path.abspath(a) for a in args)
    os.makedirs(tmp, exist_ok=True)
    mods = load_amber(pydir)
    if failures:
        return 1
    check_schema(mods)
    n = check_samples(mods, tmp, crit)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all %d sample images decoded by crit; schema matches CRIU" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
