// SPDX-License-Identifier: GPL-2.0 OR MIT
// kizuki's event capture: every socket a process uses (TCP, UDP, ICMP,
// raw, packet, SCTP), with its 5-tuple, network namespace and bytes, and
// every exec and exit (so a process that lived 5 ms is still named).
//
// Built by build.sh into kizuki.bpf.o (committed). The layout of the
// structs below is read byte by byte in src/capture/wire.rs: change both
// together.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define TCP_CLOSE 7

// Protocols as user space numbers them (wire.rs).
#define P_TCP 1
#define P_UDP 2
#define P_ICMP 3
#define P_RAW 4
#define P_PACKET 5
#define P_SCTP 6

#define DIR_UNKNOWN 0
#define DIR_OUT 1
#define DIR_IN 2

#define EV_EXEC 1
#define EV_EXIT 2
#define EV_OPEN 3
#define EV_CLOSE 4

#define PATH_DEPTH 16
#define NAME_LEN 128
#define FILENAME_LEN 256

// One socket's flow; 96 bytes, read by user space as 12 u64 words.
struct flow {
	__u64 sent;
	__u64 recv;
	__u64 first_ns;
	__u32 tgid;
	__u32 uid;
	__u32 netns;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 proto;
	__u8 family;
	__u8 dir;
	__u8 state;
	__u32 pad;
	char comm[16];
};

struct flow_event {
	__u32 kind;
	__u32 pad;
	__u64 sk;
	__u64 ts_ns;
	struct flow f;
};

struct exec_event {
	__u32 kind;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u64 ts_ns;
	__u64 start_boottime_ns;
	char comm[16];
	// Path components from the file up to the root, and how many.
	__u32 depth;
	// 1 when the walk stopped before the root (too deep).
	__u32 truncated;
	char filename[FILENAME_LEN];
	char names[PATH_DEPTH][NAME_LEN];
};

struct exit_event {
	__u32 kind;
	__u32 tgid;
	__u64 ts_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} EVENTS SEC(".maps");

// Socket (its kernel address) -> flow.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct flow);
} FLOWS SEC(".maps");

// [0]: events lost because the ring buffer was full; [1]: flows not
// tracked because FLOWS was full.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} LOST SEC(".maps");

static __always_inline void count_lost(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&LOST, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int classify(struct sock *sk, __u16 family)
{
	if (family == AF_PACKET)
		return P_PACKET;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 type = BPF_CORE_READ(sk, sk_type);
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	if (type == SOCK_RAW)
		return P_RAW;
	switch (proto) {
	case IPPROTO_TCP:
		return P_TCP;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return P_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return type == SOCK_DGRAM ? P_ICMP : 0;
	case IPPROTO_SCTP:
		return P_SCTP;
	}
	return 0;
}

// The socket's own addresses (connected peer when it has one).
static __always_inline void fill_addrs(struct flow *f, struct sock *sk)
{
	f->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	f->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (f->family == AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(f->saddr, &s, 4);
		__builtin_memcpy(f->daddr, &d, 4);
	} else if (f->family == AF_INET6) {
		BPF_CORE_READ_INTO(&f->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&f->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

// A peer named in a message (sendto/recvfrom), if any: 1 when read.
static __always_inline int msg_peer(struct msghdr *msg, __u16 family, __u8 *addr, __u16 *port)
{
	if (!msg)
		return 0;
	void *name = BPF_CORE_READ(msg, msg_name);
	if (!name)
		return 0;
	__u16 fam = 0;
	bpf_probe_read_kernel(&fam, sizeof(fam), name);
	if (fam == AF_INET) {
		struct sockaddr_in sin = {};
		bpf_probe_read_kernel(&sin, sizeof(sin), name);
		__builtin_memset(addr, 0, 16);
		__builtin_memcpy(addr, &sin.sin_addr.s_addr, 4);
		*port = bpf_ntohs(sin.sin_port);
		return 1;
	}
	if (fam == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_kernel(&sin6, sizeof(sin6), name);
		__builtin_memcpy(addr, &sin6.sin6_addr, 16);
		*port = bpf_ntohs(sin6.sin6_port);
		return 1;
	}
	return 0;
}

static __always_inline void emit_flow(__u32 kind, __u64 key, struct flow *f)
{
	struct flow_event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
	if (!e) {
		count_lost(0);
		return;
	}
	e->kind = kind;
	e->pad = 0;
	e->sk = key;
	e->ts_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(&e->f, f, sizeof(*f));
	bpf_ringbuf_submit(e, 0);
}

// The flow of `sk`, created (and announced) on first sight.
static __always_inline struct flow *flow_of(struct sock *sk, __u8 dir)
{
	if (!sk)
		return 0;
	__u64 key = (__u64)sk;
	struct flow *f = bpf_map_lookup_elem(&FLOWS, &key);
	if (f)
		return f;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	int proto = classify(sk, family);
	if (!proto)
		return 0;
	struct flow nf = {};
	__u64 id = bpf_get_current_pid_tgid();
	nf.tgid = id >> 32;
	nf.uid = (__u32)bpf_get_current_uid_gid();
	nf.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	nf.proto = proto;
	nf.family = family;
	nf.dir = dir;
	nf.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	nf.first_ns = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(&nf.comm, sizeof(nf.comm));
	if (proto == P_PACKET) {
		// A packet socket has no IP addresses; its "port" is the
		// Ethernet protocol it listens to.
		nf.sport = bpf_ntohs(BPF_CORE_READ(sk, sk_protocol));
	} else {
		fill_addrs(&nf, sk);
	}
	if (bpf_map_update_elem(&FLOWS, &key, &nf, BPF_NOEXIST)) {
		count_lost(1);
		return 0;
	}
	f = bpf_map_lookup_elem(&FLOWS, &key);
	if (f)
		emit_flow(EV_OPEN, key, f);
	return f;
}

// A connectionless socket that talks to a new peer starts a new flow: the
// old one is reported with its bytes.
static __always_inline void set_peer(struct flow *f, __u64 key, __u8 *addr, __u16 port)
{
	int same = port == f->dport;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (addr[i] != f->daddr[i])
			same = 0;
	if (same)
		return;
	int had_peer = f->dport != 0;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (f->daddr[i])
			had_peer = 1;
	if (had_peer && (f->sent || f->recv)) {
		emit_flow(EV_CLOSE, key, f);
		f->sent = 0;
		f->recv = 0;
		f->first_ns = bpf_ktime_get_boot_ns();
	}
	__builtin_memcpy(f->daddr, addr, 16);
	f->dport = port;
	emit_flow(EV_OPEN, key, f);
}

static __always_inline void count(struct sock *sk, struct msghdr *msg, int bytes, int sending)
{
	if (bytes <= 0)
		return;
	struct flow *f = flow_of(sk, sending ? DIR_OUT : DIR_IN);
	if (!f)
		return;
	if (f->proto != P_TCP && f->proto != P_PACKET) {
		__u8 addr[16] = {};
		__u16 port = 0;
		if (msg_peer(msg, f->family, addr, &port))
			set_peer(f, (__u64)sk, addr, port);
		else if (f->dport == 0)
			// Connected later (connect() on UDP): take the peer now.
			fill_addrs(f, sk);
	}
	if (sending)
		__sync_fetch_and_add(&f->sent, bytes);
	else
		__sync_fetch_and_add(&f->recv, bytes);
}

static __always_inline void release(struct socket *sock)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	__u64 key = (__u64)sk;
	struct flow *f = bpf_map_lookup_elem(&FLOWS, &key);
	if (!f)
		return;
	emit_flow(EV_CLOSE, key, f);
	bpf_map_delete_elem(&FLOWS, &key);
}

// ---- TCP connect and accept ----

SEC("fexit/tcp_v4_connect")
int BPF_PROG(tcp_v4_connect_exit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	if (ret == 0)
		flow_of(sk, DIR_OUT);
	return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(tcp_v6_connect_exit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	if (ret == 0)
		flow_of(sk, DIR_OUT);
	return 0;
}

SEC("fexit/inet_csk_accept")
int BPF_PROG(inet_csk_accept_exit, struct sock *sk, struct proto_accept_arg *arg, struct sock *ret)
{
	if (ret)
		flow_of(ret, DIR_IN);
	return 0;
}

// TCP state changes (ESTABLISHED, CLOSE, ...) kept on the flow.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk;
	struct flow *f = bpf_map_lookup_elem(&FLOWS, &key);
	if (f)
		f->state = newstate;
	return 0;
}

// ---- bytes: every inet socket (TCP, UDP, ICMP, raw, SCTP) sends and
// receives through these two pairs; packet sockets through their own ----

SEC("fexit/inet_sendmsg")
int BPF_PROG(inet_sendmsg_exit, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	count(BPF_CORE_READ(sock, sk), msg, ret, 1);
	return 0;
}

SEC("fexit/inet6_sendmsg")
int BPF_PROG(inet6_sendmsg_exit, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	count(BPF_CORE_READ(sock, sk), msg, ret, 1);
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(inet_recvmsg_exit, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	count(BPF_CORE_READ(sock, sk), msg, ret, 0);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(inet6_recvmsg_exit, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	count(BPF_CORE_READ(sock, sk), msg, ret, 0);
	return 0;
}

SEC("fexit/packet_sendmsg")
int BPF_PROG(packet_sendmsg_exit, struct socket *sock, struct msghdr *msg, size_t len, int ret)
{
	count(BPF_CORE_READ(sock, sk), 0, ret, 1);
	return 0;
}

SEC("fexit/packet_recvmsg")
int BPF_PROG(packet_recvmsg_exit, struct socket *sock, struct msghdr *msg, size_t len, int flags, int ret)
{
	count(BPF_CORE_READ(sock, sk), 0, ret, 0);
	return 0;
}

// ---- close ----

SEC("fentry/inet_release")
int BPF_PROG(inet_release_entry, struct socket *sock)
{
	release(sock);
	return 0;
}

SEC("fentry/packet_release")
int BPF_PROG(packet_release_entry, struct socket *sock)
{
	release(sock);
	return 0;
}

// ---- processes ----

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
	if (!e) {
		count_lost(0);
		return 0;
	}
	e->kind = EV_EXEC;
	e->tgid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->start_boottime_ns = BPF_CORE_READ(p, start_boottime);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	const char *filename = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);

	// The executable's path, from its dentry up to the root, crossing
	// mounts (the name as given to exec may be relative or a symlink).
	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(file, f_path.mnt);
	struct mount *mnt = container_of(vm, struct mount, mnt);
	__u32 depth = 0;
	e->truncated = 1;
	for (int i = 0; i < PATH_DEPTH + 8; i++) {
		struct dentry *root = BPF_CORE_READ(vm, mnt_root);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == root || d == parent) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
			if (up == mnt || d != root) {
				e->truncated = 0;
				break;
			}
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vm = &up->mnt;
			continue;
		}
		if (depth >= PATH_DEPTH)
			break;
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->names[depth & (PATH_DEPTH - 1)], NAME_LEN, name);
		depth++;
		d = parent;
	}
	e->depth = depth;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	// Threads end without the process ending.
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0;
	struct exit_event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
	if (!e) {
		count_lost(0);
		return 0;
	}
	e->kind = EV_EXIT;
	e->tgid = BPF_CORE_READ(p, tgid);
	e->ts_ns = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}
