//! Tests and examples find the library where diffclip-sys linked it (an rpath).
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_DIFFCLIP_LIB_DIR");
    if let Some(dir) = env::var_os("DEP_DIFFCLIP_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.to_string_lossy());
    }
}
