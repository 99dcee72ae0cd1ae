//! Compiles the XDP program `bpf/fw_drop.bpf.c` (see `bpf_build`); without
//! clang, `--backend xdp` is refused at run time and nft works.

fn main() {
    bpf_build::compile(
        "bpf/fw_drop.bpf.c",
        "fw_drop.bpf.o",
        "fw_actuator's XDP backend (the nft backend works without)",
    );
}
