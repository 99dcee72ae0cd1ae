//! Compiles the eBPF program `bpf/session_probe.bpf.c` with clang (Debian's
//! clang and libbpf-dev, see scripts/setup.sh). Without clang the crate
//! still builds: the object is left empty and `session_probe` refuses the
//! eBPF mode at run time with a message naming the fix (install clang and
//! libbpf-dev, rebuild) or the alternative (`--userspace`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/session_probe.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("session_probe.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch_include = format!(
        "/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
    );
    let status = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg(format!("-I{arch_include}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "{clang} failed ({s}) on {src}: is libbpf-dev installed? (scripts/setup.sh installs clang llvm libbpf-dev)"
        ),
        Err(e) => {
            println!(
                "cargo:warning=session_probe: {clang} not found ({e}); the eBPF mode is left out (install clang and libbpf-dev, see scripts/setup.sh; --userspace works without)"
            );
            std::fs::write(&out, b"").expect("write the empty eBPF object");
        }
    }
}
