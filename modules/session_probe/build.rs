//! Compiles the eBPF program `bpf/session_probe.bpf.c` (see `bpf_build`);
//! without clang, `session_probe` refuses the eBPF mode at run time and
//! `--userspace` works.

fn main() {
    bpf_build::compile(
        "bpf/session_probe.bpf.c",
        "session_probe.bpf.o",
        "session_probe's eBPF mode (--userspace works without)",
    );
}
