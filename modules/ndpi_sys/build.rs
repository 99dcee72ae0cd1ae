//! Links Debian's libndpi (libndpi-dev 4.2) and compiles the small C shim
//! that reads the two flow-struct fields nDPI has no accessor for, against
//! the installed header, so that no struct offset is hard-coded in Rust.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let header = std::path::Path::new("/usr/include/ndpi/ndpi_api.h");
    if !header.exists() {
        println!(
            "cargo:warning=nDPI headers not found at /usr/include/ndpi: install libndpi-dev (scripts/setup.sh does)"
        );
    }
    cc::Build::new()
        .file("src/shim.c")
        .include("/usr/include/ndpi")
        .warnings(true)
        .compile("ndpi_shim");
    println!("cargo:rustc-link-lib=ndpi");
}
