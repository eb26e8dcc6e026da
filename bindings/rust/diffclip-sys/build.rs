//! Links libdiffclip from $DIFFCLIP_LIB_DIR, else from the source tree's lib/ when it holds a
//! build (so that `cargo test` works in bindings/rust after `make`), else through the
//! system's linker path. The directory is passed on to dependents' build scripts as
//! DEP_DIFFCLIP_LIB_DIR (for their rpath).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DIFFCLIP_LIB_DIR");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let source_tree_lib = manifest.join("../../../lib");
    println!(
        "cargo:rerun-if-changed={}",
        source_tree_lib.join("libdiffclip.so").display()
    );
    let dir = match env::var_os("DIFFCLIP_LIB_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ if source_tree_lib.join("libdiffclip.so").exists() => source_tree_lib.canonicalize().ok(),
        _ => None,
    };
    if let Some(dir) = dir {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        println!("cargo:lib_dir={}", dir.display());
    }
    println!("cargo:rustc-link-lib=dylib=diffclip");
}
