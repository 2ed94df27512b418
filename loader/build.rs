//! Makes the linker script findable and rebuilds the loader when it changes. The
//! script itself is only passed (by xtask) when building the bare-metal binary.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-search={dir}");
    println!("cargo:rerun-if-changed=link.ld");
    // The EFI stub includes the loader image from this path.
    println!("cargo:rerun-if-env-changed=RUSTY_LOADER_EFI_PAYLOAD");
}
