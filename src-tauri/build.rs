fn main() {
    // Linux: the app's relative relocations packed (RELR, glibc 2.36+; an
    // older linker ignores the option): the loader reads ~10 KB of them at
    // start instead of ~470 KB, pages the idle app would keep.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    tauri_build::build()
}
