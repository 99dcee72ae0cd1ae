// SPDX-License-Identifier: BSD-3-Clause
// fw_actuator's XDP backend: drops packets by source or destination prefix
// at the driver, before the kernel's stack sees them. One longest-prefix
// trie holds every entry; the first byte of the key says what it matches
// (source or destination, IPv4 or IPv6), so a key is 8 bits of kind plus
// the address bits. The most specific source entry decides first (a pass
// entry is a whitelisted or forwarded source), then the destination entries.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define KIND_SRC4 0
#define KIND_SRC6 1
#define KIND_DST4 2
#define KIND_DST6 3

#define ACTION_DROP 1
#define ACTION_PASS 2

struct key {
	__u32 prefixlen;
	__u8 data[20]; // kind, then the address (4 or 16 bytes), zero padding
};

struct val {
	__u64 packets;
	__u64 bytes;
	__u32 action;
	__u32 rule;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct key);
	__type(value, struct val);
} rules SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(struct val *v, __u64 len)
{
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
}

SEC("xdp")
int fw_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = end - data;
	struct ethhdr *eth = data;
	struct key src = {}, dst = {};
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;
		if ((void *)(vh + 1) > end)
			return XDP_PASS;
		proto = vh->proto;
		l3 = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		src.prefixlen = dst.prefixlen = 8 + 32;
		src.data[0] = KIND_SRC4;
		dst.data[0] = KIND_DST4;
		__builtin_memcpy(&src.data[1], &ip->saddr, 4);
		__builtin_memcpy(&dst.data[1], &ip->daddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		src.prefixlen = dst.prefixlen = 8 + 128;
		src.data[0] = KIND_SRC6;
		dst.data[0] = KIND_DST6;
		__builtin_memcpy(&src.data[1], &ip6->saddr, 16);
		__builtin_memcpy(&dst.data[1], &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}
	struct val *v = bpf_map_lookup_elem(&rules, &src);
	if (v) {
		if (v->action == ACTION_PASS)
			return XDP_PASS;
		count(v, len);
		return XDP_DROP;
	}
	v = bpf_map_lookup_elem(&rules, &dst);
	if (v && v->action == ACTION_DROP) {
		count(v, len);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
