//! Link-time fix for GPU support.
//!
//! The linker's `--as-needed` default drops `libtorch_cuda.so` because no symbol of it is referenced
//! directly; without it libtorch never registers the CUDA backend and the binary never sees a GPU.
//! We force it in and add an rpath to `$LIBTORCH/lib` so the binary runs without `LD_LIBRARY_PATH`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        if lib.join("libtorch_cuda.so").exists() {
            // Only where tensors run: the training/evaluation program, its benchmark and the
            // tests. `fairtat-dashboard` never touches tensors and keeps libtorch out.
            for arg in ["-Wl,--no-as-needed", "-ltorch_cuda"] {
                println!("cargo:rustc-link-arg-bin=fairtat={arg}");
                println!("cargo:rustc-link-arg-bin=fairtat-bench={arg}");
                println!("cargo:rustc-link-arg-tests={arg}");
            }
        }
    }
}
