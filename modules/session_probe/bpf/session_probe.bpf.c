// SPDX-License-Identifier: BSD-3-Clause
/*
 * session_probe's data plane: a TC classifier (clsact ingress and egress,
 * so both directions of the probed interface) that keeps per-session
 * features of TCP, UDP and ICMP traffic in one of two buffers while user
 * space drains the other.
 *
 * Buffer b (0 or 1, chosen by control[0]) is:
 *   sessions_b  session key -> counters (mining features, DDoS quota)
 *   refused_b   keys of sessions refused for a full sessions_b (so each
 *               refused session is counted once; allocated on use, as only
 *               the surplus needs it)
 *   packets_b   queue of captured packets (DDoS packet features): at most
 *               control[1] per session, at most max_entries overall
 *   counters    [b * N_COUNTERS + i], see enum counter
 *
 * The layouts below are mirrored by src/ebpf.rs (repr(C), no implicit
 * padding); the rules are mirrored by src/features.rs, which the user-space
 * mode runs and whose unit tests state them.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define EEXIST 17

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58

#define TCP_SYN 0x02
#define TCP_ACK 0x10

/* Canonical session key: (addr_a, port_a) <= (addr_b, port_b), addresses as
 * 16 bytes (IPv4 mapped: ::ffff:a.b.c.d), ports in host order. */
struct skey {
	__u8 addr_a[16];
	__u8 addr_b[16];
	__u16 port_a;
	__u16 port_b;
	__u8 proto;
	__u8 pad[3];
};

struct sval {
	__u64 first_ns;
	__u64 last_ns;
	__u64 bytes_ab;
	__u64 bytes_ba;
	__u32 pkts_ab;
	__u32 pkts_ba;
	__u32 captured;
	__u8 first_dir; /* 0: the first packet went a -> b, 1: b -> a */
	__u8 syn_dir;   /* 0: no SYN seen, 1: SYN a -> b, 2: SYN b -> a */
	__u8 pad[2];
};

struct pkt {
	__u8 src[16];
	__u8 dst[16];
	__u64 ts_ns;
	__u32 len;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 pad[6];
};

enum counter {
	C_SESSIONS_REFUSED = 0,
	C_PACKETS_UNTRACKED = 1,
	C_PACKETS_OVER_QUOTA = 2,
	C_PACKETS_QUEUE_FULL = 3,
	N_COUNTERS = 4,
};

/* Sizes are set by the loader (set_max_entries) from the options. */
#define SESSION_MAP(name)                                                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1024);                                     \
		__type(key, struct skey);                                      \
		__type(value, struct sval);                                    \
	} name SEC(".maps")
#define REFUSED_MAP(name)                                                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1024);                                     \
		__uint(map_flags, BPF_F_NO_PREALLOC);                          \
		__type(key, struct skey);                                      \
		__type(value, __u8);                                           \
	} name SEC(".maps")
#define PACKET_QUEUE(name)                                                     \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_QUEUE);                              \
		__uint(max_entries, 4096);                                     \
		__type(value, struct pkt);                                     \
	} name SEC(".maps")

SESSION_MAP(sessions_0);
SESSION_MAP(sessions_1);
REFUSED_MAP(refused_0);
REFUSED_MAP(refused_1);
PACKET_QUEUE(packets_0);
PACKET_QUEUE(packets_1);

/* control[0]: the buffer written now; control[1]: packets per session. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} control SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * N_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 buf, __u32 which)
{
	__u32 i = buf * N_COUNTERS + which;
	__u64 *c = bpf_map_lookup_elem(&counters, &i);
	if (c)
		__sync_fetch_and_add(c, 1);
}

/* -1, 0, 1 as (a, pa) compares with (b, pb). */
static __always_inline int endpoint_cmp(const __u8 *a, __u16 pa, const __u8 *b,
					__u16 pb)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return 0;
}

static __always_inline void track(void *sessions, void *refused, void *queue,
				  __u32 buf, __u32 quota, struct skey *k,
				  struct pkt *p, __u8 dir, __u8 syn_dir)
{
	struct sval *v = bpf_map_lookup_elem(sessions, k);
	if (!v) {
		struct sval nv = {};
		nv.first_ns = p->ts_ns;
		nv.last_ns = p->ts_ns;
		nv.first_dir = dir;
		long r = bpf_map_update_elem(sessions, k, &nv, BPF_NOEXIST);
		if (r != 0 && r != -EEXIST) {
			/* Full: this session waits for the next window. */
			__u8 one = 1;
			if (bpf_map_update_elem(refused, k, &one, BPF_NOEXIST) ==
			    0)
				count(buf, C_SESSIONS_REFUSED);
			count(buf, C_PACKETS_UNTRACKED);
			return;
		}
		v = bpf_map_lookup_elem(sessions, k);
		if (!v) {
			count(buf, C_PACKETS_UNTRACKED);
			return;
		}
	}
	if (dir == 0) {
		__sync_fetch_and_add(&v->pkts_ab, 1);
		__sync_fetch_and_add(&v->bytes_ab, p->len);
	} else {
		__sync_fetch_and_add(&v->pkts_ba, 1);
		__sync_fetch_and_add(&v->bytes_ba, p->len);
	}
	if (p->ts_ns > v->last_ns)
		v->last_ns = p->ts_ns;
	if (syn_dir && !v->syn_dir)
		v->syn_dir = syn_dir;
	if (v->captured >= quota) {
		count(buf, C_PACKETS_OVER_QUOTA);
		return;
	}
	if (__sync_fetch_and_add(&v->captured, 1) >= quota) {
		count(buf, C_PACKETS_OVER_QUOTA);
		return;
	}
	if (bpf_map_push_elem(queue, p, 0) != 0)
		count(buf, C_PACKETS_QUEUE_FULL);
}

SEC("classifier")
int session_probe(struct __sk_buff *skb)
{
	struct pkt p = {};
	__u16 proto;
	__u32 l4;

	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return TC_ACT_UNSPEC;
	__u32 l3 = ETH_HLEN;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (bpf_skb_load_bytes(skb, 16, &proto, 2) < 0)
			return TC_ACT_UNSPEC;
		l3 += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 h[20];
		if (bpf_skb_load_bytes(skb, l3, h, 20) < 0)
			return TC_ACT_UNSPEC;
		if ((h[0] >> 4) != 4)
			return TC_ACT_UNSPEC;
		p.src[10] = 0xff;
		p.src[11] = 0xff;
		p.dst[10] = 0xff;
		p.dst[11] = 0xff;
		__builtin_memcpy(&p.src[12], &h[12], 4);
		__builtin_memcpy(&p.dst[12], &h[16], 4);
		p.proto = h[9];
		l4 = l3 + (h[0] & 0x0f) * 4;
		/* Later fragments carry no ports. */
		if (((h[6] & 0x1f) | h[7]) != 0)
			l4 = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 h[40];
		if (bpf_skb_load_bytes(skb, l3, h, 40) < 0)
			return TC_ACT_UNSPEC;
		if ((h[0] >> 4) != 6)
			return TC_ACT_UNSPEC;
		__builtin_memcpy(p.src, &h[8], 16);
		__builtin_memcpy(p.dst, &h[24], 16);
		p.proto = h[6];
		l4 = l3 + 40;
	} else {
		return TC_ACT_UNSPEC;
	}
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP &&
	    p.proto != IPPROTO_ICMP && p.proto != IPPROTO_ICMPV6)
		return TC_ACT_UNSPEC;
	if (l4 && (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP)) {
		__u16 ports[2];
		if (bpf_skb_load_bytes(skb, l4, ports, 4) == 0) {
			p.sport = bpf_ntohs(ports[0]);
			p.dport = bpf_ntohs(ports[1]);
		}
		if (p.proto == IPPROTO_TCP) {
			__u8 flags;
			if (bpf_skb_load_bytes(skb, l4 + 13, &flags, 1) == 0)
				p.tcp_flags = flags;
		}
	}
	p.len = skb->len;
	p.ts_ns = bpf_ktime_get_ns();

	struct skey k = {};
	__u8 dir;
	k.proto = p.proto;
	if (endpoint_cmp(p.src, p.sport, p.dst, p.dport) <= 0) {
		__builtin_memcpy(k.addr_a, p.src, 16);
		__builtin_memcpy(k.addr_b, p.dst, 16);
		k.port_a = p.sport;
		k.port_b = p.dport;
		dir = 0;
	} else {
		__builtin_memcpy(k.addr_a, p.dst, 16);
		__builtin_memcpy(k.addr_b, p.src, 16);
		k.port_a = p.dport;
		k.port_b = p.sport;
		dir = 1;
	}
	__u8 syn_dir = 0;
	if ((p.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		syn_dir = dir + 1;

	__u32 zero = 0, one = 1;
	__u32 *active = bpf_map_lookup_elem(&control, &zero);
	__u32 *quota = bpf_map_lookup_elem(&control, &one);
	if (!active || !quota)
		return TC_ACT_UNSPEC;
	__u32 q = *quota;
	if (*active)
		track(&sessions_1, &refused_1, &packets_1, 1, q, &k, &p, dir,
		      syn_dir);
	else
		track(&sessions_0, &refused_0, &packets_0, 0, q, &k, &p, dir,
		      syn_dir);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
