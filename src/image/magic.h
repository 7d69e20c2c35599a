/* SPDX-License-Identifier: MIT */
#ifndef AMBER_IMAGE_MAGIC_H
#define AMBER_IMAGE_MAGIC_H

/*
 * Magic numbers and on-disk layout of the images amber writes. These are
 * facts of CRIU's image format (CRIU 3.17, as read by Debian's crit), not
 * amber's choices: values come from pycriu/images/magic.py and CRIU's
 * criu/include/magic.h, layout from pycriu/images/images.py and
 * criu/image.c, file names from criu/image-desc.c.
 *
 * Layout of a protobuf image (all u32 in host byte order, little endian):
 *
 *	u32 IMG_COMMON_MAGIC            -- omitted for inventory.img only
 *	u32 <image>_MAGIC
 *	{ u32 len; u8 pb[len]; [raw payload] }*   -- until EOF
 *
 * There is no entry count and no trailer: readers loop until EOF.
 * IMG_SERVICE_MAGIC heads only CRIU's service files (stats-*.img,
 * irmap-cache.img); amber writes stats-dump and stats-restore (no .img,
 * in the RPC's work directory, as CRIU). inventory.img starts
 * directly with INVENTORY_MAGIC (no head magic at all; crit accepts both,
 * CRIU's own reader rejects a head magic there). Raw images
 * (RAW_IMAGE_MAGIC, i.e. pages-*.img) have no magic and no framing.
 *
 * image (file name)         magic              entries; raw payload
 * ------------------------  -----------------  ------------------------------
 * inventory.img             INVENTORY (only)   1 inventory_entry,
 *                                              img_version = CRTOOLS_IMAGES_V1_1
 * pstree.img                PSTREE             pstree_entry per process
 * core-%u.img   (tid)       CORE               1 core_entry per thread; the
 *                                              leader's has tc (task_core:
 *                                              timers, rlimits, sigactions,
 *                                              signals_s) and ids; every
 *                                              thread has thread_info and
 *                                              thread_core (creds, signals_p)
 * mm-%u.img     (pid)       MM                 1 mm_entry with repeated vmas
 * pagemap-%lu.img (pid)     PAGEMAP            1 pagemap_head {pages_id}, THEN
 *                                              pagemap_entry* {vaddr,
 *                                              nr_pages, flags(PE_*)}
 * pages-%u.img  (pages_id)  none (RAW)         raw page data: nr_pages *
 *                                              PAGE_SIZE bytes for each
 *                                              PE_PRESENT pagemap entry, in
 *                                              pagemap order; PE_PARENT /
 *                                              PE_LAZY entries take no bytes
 * fs-%u.img     (pid)       FS                 1 fs_entry
 * fdinfo-%u.img             FDINFO             fdinfo_entry per fd; %u is
 *                                              ids.files_id when inventory
 *                                              fdinfo_per_id is set (CRIU
 *                                              always sets it), else pid
 * files.img                 FILES              file_entry per open file
 *                                              (reg, pipe, fifo, usk, tty...)
 * pipes-data.img            PIPES_DATA         pipe_data_entry, each followed
 *                                              by exactly .bytes raw bytes
 * fifo-data.img             FIFO_DATA          same as pipes-data
 * sk-queues.img             SK_QUEUES          sk_packet_entry, each followed
 *                                              by exactly .length raw bytes
 * tty-info.img              TTY_INFO           tty_info_entry per tty
 * memfd.img                 MEMFD_INODE        memfd_inode_entry per memfd
 *                                              inode; contents in
 *                                              pagemap-shmem-<shmid>.img
 * seccomp.img               SECCOMP            1 seccomp_entry: every filter
 * utsns-%u.img  (ns id)     UTSNS              1 utsns_entry {nodename,
 *                                              domainname}: written only when
 *                                              the tree has a UTS namespace
 *                                              of its own (ids.uts_ns_id)
 * timens-%u.img (ns id)     TIMENS             1 timens_entry: the clocks of the
 *                                              tree's own time namespace as
 *                                              read in it (ids.time_ns_id)
 * userns-%u.img (ns id)     USERNS             1 userns_entry: the uid and gid
 *                                              maps of the tree's own user
 *                                              namespace (ids.user_ns_id)
 * ipcns-var-%u.img (ns id)  IPC_VAR            1 ipc_var_entry: the sysctls of
 *                                              the tree's own IPC namespace
 *                                              (ids.ipc_ns_id)
 * ipcns-shm-%u.img (ns id)  IPCNS_SHM          ipc_shm_entry per SysV segment,
 *                                              in_pagemaps: contents in
 *                                              pagemap-shmem-<desc.id>.img
 * ipcns-sem-%u.img (ns id)  IPCNS_SEM          ipc_sem_entry per set, then
 *                                              nsems u16 values raw, padded
 *                                              to 8 bytes
 * ipcns-msg-%u.img (ns id)  IPCNS_MSG          ipc_msg_entry per queue, then
 *                                              qnum { ipc_msg, msize bytes
 *                                              raw padded to 8 }
 * ipcns-mqueue-%u.img       IPCNS_MQUEUE       amber only: mqueue_entry per
 *   (ns id)                                    POSIX message queue, with its
 *                                              messages in receive order
 * netdev-%u.img (ns id)     NETDEV             net_device_entry per link of
 *                                              the tree's own network
 *                                              namespace (ids.net_ns_id):
 *                                              its loopback and veths
 * netns-%u.img (ns id)      NETNS              netns_entry: written for an
 *                                              external namespace only,
 *                                              its ext_key
 * ifaddr-%u.img, route-%u.img,   none (RAW)    its addresses and main-table
 * route6-%u.img (ns id)                        routes: iproute2's `ip addr
 *                                              save` / `ip route save` (a
 *                                              u32 magic, then RTM_NEWADDR or
 *                                              RTM_NEWROUTE messages)
 * tty-data.img              TTY_DATA           tty_data_entry; data is inside
 *                                              the message (no raw payload)
 * filelocks.img             FILE_LOCKS         file_lock_entry per held lock
 *                                              (--file-locks)
 * cgroup.img                CGROUP             1 cgroup_entry: the cgroup sets
 *                                              of the tasks (tc.cg_set)
 * mountpoints-%u.img (ns)  MNTS               mnt_entry per mount of the
 *                                              tree's own mount namespace
 *                                              (ids.mnt_ns_id)
 * tmpfs-dev-%u.tar.gz.img   (raw)              a tmpfs's files: tar.gz of
 *                           (kernel dev)       its mount, no magic
 * tcp-stream-%x.img (ino)   TCP_STREAM         1 tcp_stream_entry, then
 *                                              inq_len + outq_len raw bytes
 *                                              (--tcp-established)
 * ghost-file-%x.img (id)    GHOST_FILE         1 ghost_file_entry; if !chunks
 *                                              the file content follows raw
 *                                              up to EOF; if chunks, then
 *                                              {ghost_chunk_entry{len,off},
 *                                              len raw bytes}* until EOF
 * remap-fpath.img           REMAP_FPATH        remap_file_path_entry per
 *                                              unlinked regular file:
 *                                              files.img id -> ghost id
 *
 * Legacy per-kind images (CRIU now embeds these in core/files.img, but crit
 * still decodes them): creds-%u.img CREDS, sigacts-%u.img SIGACT,
 * itimers-%u.img ITIMERS, posix-timers-%u.img POSIX_TIMERS,
 * rlimit-%u.img RLIMIT, ids-%u.img IDS, reg-files.img REG_FILES,
 * pipes.img PIPES, fifo.img FIFO, unixsk.img UNIXSK, tty.img TTY_FILES.
 * Pending signals must go in core (tc.signals_s / thread_core.signals_p):
 * crit has no handler for the old signal-s/signal-p images.
 */

#define CRTOOLS_IMAGES_V1_1 2 /* inventory_entry.img_version */

#define RAW_IMAGE_MAGIC	  0x0
#define IMG_COMMON_MAGIC  0x54564319 /* Sarov (a.k.a. Arzamas-16) */
#define IMG_SERVICE_MAGIC 0x55105940 /* Zlatoust */

#define INVENTORY_MAGIC	   0x58313116
#define PSTREE_MAGIC	   0x50273030
#define FDINFO_MAGIC	   0x56213732
#define PAGEMAP_MAGIC	   0x56084025
#define PAGES_MAGIC	   RAW_IMAGE_MAGIC
#define CORE_MAGIC	   0x55053847
#define IDS_MAGIC	   0x54432030
#define MM_MAGIC	   0x57492820
#define FS_MAGIC	   0x51403912
#define CREDS_MAGIC	   0x54023547
#define SIGACT_MAGIC	   0x55344201
#define ITIMERS_MAGIC	   0x57464056
#define POSIX_TIMERS_MAGIC 0x52603957
#define RLIMIT_MAGIC	   0x57113925
#define FILES_MAGIC	   0x56303138
#define REG_FILES_MAGIC	   0x50363636
#define PIPES_MAGIC	   0x56513555
#define PIPES_DATA_MAGIC   0x56453709
#define FIFO_MAGIC	   0x58364939
#define FIFO_DATA_MAGIC	   0x59333054
#define UNIXSK_MAGIC	   0x54373943
#define SK_QUEUES_MAGIC	   0x56264026
#define TTY_FILES_MAGIC	   0x59433025
#define TTY_INFO_MAGIC	   0x59453036
#define TTY_DATA_MAGIC	   0x59413026
#define GHOST_FILE_MAGIC   0x52583605
#define REMAP_FPATH_MAGIC  0x59133954
#define MEMFD_INODE_MAGIC  0x48453499
#define SECCOMP_MAGIC	   0x64413049
#define UTSNS_MAGIC	   0x54473203
#define IPC_VAR_MAGIC	   0x53115007
#define IPCNS_SHM_MAGIC	   0x46283044
#define IPCNS_MSG_MAGIC	   0x55453737
#define IPCNS_SEM_MAGIC	   0x59573019
#define IPCNS_MQUEUE_MAGIC 0x41514d51 /* amber only */
#define NETDEV_MAGIC	   0x57373951
#define NETNS_MAGIC	   0x55933752
#define FILE_LOCKS_MAGIC   0x54323616
#define TCP_STREAM_MAGIC   0x51465506
#define MNTS_MAGIC	   0x55563928
#define CGROUP_MAGIC	   0x59383330
#define TIMENS_MAGIC	   0x43114433
#define USERNS_MAGIC	   0x55474906
/* Service files, headed by IMG_SERVICE_MAGIC: stats-dump, stats-restore. */
#define STATS_MAGIC	   0x57093306

/* pagemap_entry.flags (CRIU keeps these out of pagemap.proto). */
#define PE_PARENT  (1 << 0) /* pages are in the parent (pre-dump) image */
#define PE_LAZY	   (1 << 1) /* pages are fetched lazily, not in pages-*.img */
#define PE_PRESENT (1 << 2) /* pages are in this set's pages-*.img */

/* File names live in one table with the image types: src/image.c. */

#endif /* AMBER_IMAGE_MAGIC_H */
