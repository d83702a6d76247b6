// SPDX-License-Identifier: GPL-2.0 OR MIT
// kizuki's event capture: every socket a process uses (TCP, UDP, ICMP,
// raw, packet, SCTP), with its 5-tuple, network namespace and bytes, and
// every exec and exit (so a process that lived 5 ms is still named).
//
// Only BTF tracepoints are used: they need no tracefs, and kernels built
// without kprobes, or that refuse fentry/fexit (as the CI machines do),
// still have them. The hooks:
//   sock/inet_sock_set_state   TCP connect (SYN_SENT, in the process),
//                              ESTABLISHED (addresses)
//   tcp/tcp_destroy_sock       the end of a TCP socket
//   sock/sock_send_length      bytes sent by any socket (all protocols)
//   sock/sock_recv_length      bytes received by any socket
//   net/net_dev_queue          the peer of a connectionless socket's
//                              send, from the packet it hands to a device
//                              (TCP packets return at the first test)
//   sched/sched_process_exec   the program image, with its resolved path
//   sched/sched_process_exit   the end of a process
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
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
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

// Socket (its cookie) -> flow.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
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

// A socket's key: its cookie, unique for the life of the system (a
// socket's address is reused by the next socket once it is freed).
static __always_inline __u64 sk_key(struct sock *sk)
{
	return bpf_get_socket_cookie(sk);
}

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

// The peer of a connectionless socket's packet (net_dev_queue), taken by
// the send it belongs to: the packet reaches a device inside the send,
// before sock_send_length reports it.
struct peer {
	__u64 ts_ns;
	__u8 addr[16];
	__u16 port;
	__u16 family;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct peer);
} PEERS SEC(".maps");

// The peer of this socket's send now, if any: 1 when read. `key` is the
// socket's address (net_dev_queue cannot ask for its cookie).
static __always_inline int take_peer(__u64 key, __u8 *addr, __u16 *port)
{
	struct peer *p = bpf_map_lookup_elem(&PEERS, &key);
	if (!p)
		return 0;
	// From this very send (a few microseconds ago), not a stale one.
	int fresh = bpf_ktime_get_boot_ns() - p->ts_ns < 5000000;
	if (fresh) {
		__builtin_memcpy(addr, p->addr, 16);
		*port = p->port;
	}
	bpf_map_delete_elem(&PEERS, &key);
	return fresh;
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
// `created` (when not null) is set when the flow is new, and the caller
// announces it; otherwise it is announced here.
static __always_inline struct flow *flow_of(struct sock *sk, __u8 dir, int *created)
{
	if (!sk)
		return 0;
	__u64 key = sk_key(sk);
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
	if (f && created)
		*created = 1;
	else if (f)
		emit_flow(EV_OPEN, key, f);
	return f;
}

static __always_inline int has_peer(struct flow *f)
{
	int any = f->dport != 0;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (f->daddr[i])
			any = 1;
	return any;
}

// A connectionless socket that talks to a new peer starts a new flow: the
// old one is reported with its bytes.
static __always_inline int set_peer(struct flow *f, __u64 key, __u8 *addr, __u16 port)
{
	int same = port == f->dport;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (addr[i] != f->daddr[i])
			same = 0;
	if (same)
		return 0;
	if (has_peer(f) && (f->sent || f->recv)) {
		emit_flow(EV_CLOSE, key, f);
		f->sent = 0;
		f->recv = 0;
		f->first_ns = bpf_ktime_get_boot_ns();
	}
	__builtin_memcpy(f->daddr, addr, 16);
	f->dport = port;
	emit_flow(EV_OPEN, key, f);
	return 1;
}

// TCP's own receive total (bytes_received: everything the peer's data
// moved rcv_nxt by). Data read with splice() never passes sock_recvmsg,
// so TCP flows take their received bytes from here, never twice.
static __always_inline void tcp_received(struct sock *sk, struct flow *f)
{
	__u64 rcvd = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	if (rcvd > f->recv)
		f->recv = rcvd;
}

static __always_inline void count(struct sock *sk, int bytes, int sending)
{
	if (bytes <= 0)
		return;
	int created = 0;
	struct flow *f = flow_of(sk, sending ? DIR_OUT : DIR_IN, &created);
	if (!f)
		return;
	int announced = 0;
	if (f->proto != P_TCP && f->proto != P_PACKET) {
		__u8 addr[16] = {};
		__u16 port = 0;
		if (sending && take_peer((__u64)sk, addr, &port)) {
			// Announces the flow with its peer when the peer is new.
			announced = set_peer(f, sk_key(sk), addr, port);
		} else if (!has_peer(f)) {
			// Connected later (connect() on UDP): take the peer now.
			fill_addrs(f, sk);
		}
	}
	if (created && !announced)
		emit_flow(EV_OPEN, sk_key(sk), f);
	if (sending)
		__sync_fetch_and_add(&f->sent, bytes);
	else if (f->proto == P_TCP)
		tcp_received(sk, f);
	else
		__sync_fetch_and_add(&f->recv, bytes);
}

// ---- TCP: connect, state, close ----

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, const int oldstate, const int newstate)
{
	// connect() moves a socket to SYN_SENT in the calling process: the
	// owner is known here, the local port is not chosen yet. The flow is
	// announced once established (or at its close if it never was).
	if (newstate == TCP_SYN_SENT) {
		int created = 0;
		flow_of(sk, DIR_OUT, &created);
		return 0;
	}
	// A connection moves through ten states; only these change what user
	// space shows: established after a connect (the addresses), leaving
	// ESTABLISHED (closing), and the close (ports of one never
	// established). The others return before the flow map is read.
	int connected = newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT;
	if (!connected && oldstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	__u64 key = sk_key(sk);
	struct flow *f = bpf_map_lookup_elem(&FLOWS, &key);
	if (!f)
		return 0;
	f->state = newstate;
	if (connected) {
		fill_addrs(f, sk);
		emit_flow(EV_OPEN, key, f);
	} else if (newstate == TCP_CLOSE && f->sport == 0) {
		// Never established: the ports are still set here, not later.
		fill_addrs(f, sk);
	}
	return 0;
}

// The socket is freed: its program closed it and TCP is done with it
// (data can still be read after the CLOSE state, until then).
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy_sock, struct sock *sk)
{
	__u64 key = sk_key(sk);
	struct flow *f = bpf_map_lookup_elem(&FLOWS, &key);
	if (!f)
		return 0;
	tcp_received(sk, f);
	emit_flow(EV_CLOSE, key, f);
	bpf_map_delete_elem(&FLOWS, &key);
	return 0;
}

// TCP calls this as data is read, by recv() and by splice() alike (in the
// reader's own process): a splice-only download is counted as it goes.
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tcp_rcv_space_adjust, struct sock *sk)
{
	struct flow *f = flow_of(sk, DIR_IN, 0);
	if (f)
		tcp_received(sk, f);
	return 0;
}

// ---- bytes: every socket sends and receives through these two ----

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	count(sk, ret, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	count(sk, ret, 0);
	return 0;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

// The peer of a connectionless socket's send, read from the packet as it
// is handed to a device (in the sender's call, before sock_send_length).
// Unlike a system call hook this costs nothing to other system calls, and
// it sees sends made through io_uring or sendmmsg alike.
SEC("tp_btf/net_dev_queue")
int BPF_PROG(net_dev_queue, struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	if (!sk)
		return 0;
	// Time-wait and request sockets (TCP) are not full sockets.
	__u8 st = sk->__sk_common.skc_state;
	if (st == TCP_TIME_WAIT || st == TCP_NEW_SYN_RECV)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 proto = sk->sk_protocol;
	if (proto == IPPROTO_TCP)
		return 0;
	// A connected socket's peer is its own address (fill_addrs).
	if (sk->__sk_common.skc_dport != 0)
		return 0;
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	__u16 l3 = bpf_ntohs(skb->protocol);
	struct peer p = {};
	if (l3 == ETH_P_IP) {
		__u32 d = 0;
		if (bpf_probe_read_kernel(&d, 4, head + nh + 16))
			return 0;
		if (family == AF_INET6) {
			// A dual-stack socket sending to an IPv4 address.
			p.addr[10] = 0xff;
			p.addr[11] = 0xff;
			__builtin_memcpy(&p.addr[12], &d, 4);
		} else {
			__builtin_memcpy(p.addr, &d, 4);
		}
	} else if (l3 == ETH_P_IPV6 && family == AF_INET6) {
		if (bpf_probe_read_kernel(p.addr, 16, head + nh + 24))
			return 0;
	} else {
		return 0;
	}
	if (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE) {
		__u16 port = 0;
		if (bpf_probe_read_kernel(&port, 2, head + th + 2))
			return 0;
		p.port = bpf_ntohs(port);
	}
	p.family = family;
	p.ts_ns = bpf_ktime_get_boot_ns();
	// Keyed by the socket's address: the cookie may not exist yet, and
	// the entry lives only until this send's sock_send_length.
	__u64 key = (__u64)sk;
	bpf_map_update_elem(&PEERS, &key, &p, BPF_ANY);
	return 0;
}

// ---- processes ----

// An exec event is built here (too big for the BPF stack), then copied
// into the ring buffer.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} SCRATCH SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!e)
		return 0;
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
	// The loop is unrolled and keeps its count in the map value, not in
	// a register: the verifier then sees every step alike and checks the
	// walk in a few thousand instructions instead of every path.
	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(file, f_path.mnt);
	struct mount *mnt = container_of(vm, struct mount, mnt);
	e->depth = 0;
	e->truncated = 1;
#pragma unroll
	for (int i = 0; i < PATH_DEPTH + 4; i++) {
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
		__u32 depth = e->depth;
		if (depth >= PATH_DEPTH)
			break;
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->names[depth & (PATH_DEPTH - 1)], NAME_LEN, name);
		e->depth = depth + 1;
		d = parent;
	}
	if (bpf_ringbuf_output(&EVENTS, e, sizeof(*e), 0))
		count_lost(0);
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
