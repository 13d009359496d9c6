//! The engine's own test binaries load libtorch: give them an rpath to `$LIBTORCH/lib` so they run
//! without `LD_LIBRARY_PATH` (the root crate's build script does the same for the programs).
//!
//! It also compiles `cpp/amp.cpp`, the few libtorch calls tch does not expose (bfloat16
//! autocast, channels_last), against the same libtorch headers as torch-sys.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=cpp/amp.cpp");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        panic!("LIBTORCH is not set: build through `make` (it names the venv's torch)");
    };
    let root = std::path::Path::new(&libtorch);
    let lib = root.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // The PyPI wheels of torch 2.x use the new C++ ABI (`torch._C._GLIBCXX_USE_CXX11_ABI`).
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("cpp/amp.cpp")
        .compile("fairtat_amp");
}
