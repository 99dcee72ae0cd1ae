//! Compiles an eBPF program (C, `bpf/NAME.bpf.c`) for a module's build
//! script with clang (Debian's clang and libbpf-dev, see scripts/setup.sh),
//! into `OUT_DIR/NAME.bpf.o` for `aya::include_bytes_aligned!`. Without
//! clang the crate still builds: the object is left empty and the module
//! refuses its eBPF mode at run time with a message naming the fix.

use std::path::PathBuf;
use std::process::Command;

/// Compiles `src` to `OUT_DIR/<object>`; `what` names the mode left out
/// when clang is missing (for the build's warning).
pub fn compile(src: &str, object: &str, what: &str) {
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join(object);
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
                "cargo:warning={clang} not found ({e}): {what} is left out (install clang and libbpf-dev, see scripts/setup.sh)"
            );
            std::fs::write(&out, b"").expect("write the empty eBPF object");
        }
    }
}
