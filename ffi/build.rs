//! Writes pkg-config files for the libraries this build produces, next to
//! them: `<target>/<profile>/pkgconfig/polyrelay.pc` (shared library) and
//! `polyrelay-static.pc` (static library), so C and C++ programs build with
//! `PKG_CONFIG_PATH=target/debug/pkgconfig pkg-config --cflags --libs polyrelay`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let (Some(out_dir), Some(manifest_dir)) =
        (env::var_os("OUT_DIR"), env::var_os("CARGO_MANIFEST_DIR"))
    else {
        return;
    };
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out; the libraries
    // land in <target>/<profile>.
    let Some(libdir) = Path::new(&out_dir).ancestors().nth(3) else {
        return;
    };
    let includedir = PathBuf::from(manifest_dir).join("..").join("include");
    let includedir = includedir.canonicalize().unwrap_or(includedir);
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // What the Rust standard library needs from the system when linked statically
    // (`rustc --print native-static-libs`).
    let native = match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux") => "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc",
        Ok("macos") => "-framework CoreFoundation -framework Security -liconv -lSystem -lc -lm",
        _ => "",
    };
    let header = format!(
        "libdir={}\nincludedir={}\n\n",
        libdir.display(),
        includedir.display()
    );
    let shared = format!(
        "{header}Name: polyrelay\nDescription: One resilient client for many public APIs (C ABI, shared library)\n\
         Version: {version}\nCflags: -I${{includedir}}\nLibs: -L${{libdir}} -lpolyrelay_ffi\nLibs.private: {native}\n"
    );
    let fully_static = format!(
        "{header}Name: polyrelay-static\nDescription: One resilient client for many public APIs (C ABI, static library)\n\
         Version: {version}\nCflags: -I${{includedir}}\nLibs: ${{libdir}}/libpolyrelay_ffi.a {native}\n"
    );
    let dir = libdir.join("pkgconfig");
    let written = fs::create_dir_all(&dir)
        .and_then(|()| fs::write(dir.join("polyrelay.pc"), shared))
        .and_then(|()| fs::write(dir.join("polyrelay-static.pc"), fully_static));
    if let Err(e) = written {
        println!(
            "cargo::warning=cannot write pkg-config files to {}: {e}",
            dir.display()
        );
    }
}
