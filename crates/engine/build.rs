//! The engine's own test binaries load libtorch: give them an rpath to `$LIBTORCH/lib` so they run
//! without `LD_LIBRARY_PATH` (the root crate's build script does the same for the programs).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
