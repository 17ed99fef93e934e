//! Generates the C header `enos_token.h` from the Rust sources with cbindgen.
//!
//! The header is written to `$OUT_DIR/enos_token.h` on every build. The copy in
//! `include/` is committed and is what users read; this script never rewrites
//! it silently. When the two differ it prints a warning, and the test
//! `tests/header.rs` fails. To refresh the committed copy, run
//!
//! ```sh
//! ENOS_TOKEN_WRITE_HEADER=1 cargo build
//! ```
//!
//! and commit `include/enos_token.h`. On Linux it also gives the shared
//! library a soname (`libenos_token.so`), which cargo never sets for a cdylib;
//! under cargo-c (`cargo cinstall`) the soname is cargo-c's, versioned.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=include/enos_token.h");
    println!("cargo:rerun-if-env-changed=ENOS_TOKEN_WRITE_HEADER");

    // cargo-c (which turns on the `capi` feature) sets a versioned soname,
    // libenos_token.so.0.1, and installs the symlinks it needs. A plain build
    // gets the unversioned name, which works straight from target/.
    let built_by_cargo_c = std::env::var_os("CARGO_FEATURE_CAPI").is_some();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !built_by_cargo_c {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libenos_token.so");
    }

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    if !built_by_cargo_c {
        build_tree_pkg_config(&crate_dir, &out_dir);
    }
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    config.after_includes = Some(version_macros());
    let bindings = match cbindgen::generate_with_config(&crate_dir, config) {
        Ok(bindings) => bindings,
        Err(e) => {
            // A syntax error in src/ is reported by rustc itself, better.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    let generated = out_dir.join("enos_token.h");
    bindings.write_to_file(&generated);

    let committed = crate_dir.join("include").join("enos_token.h");
    if same_contents(&generated, &committed) {
        return;
    }
    if std::env::var_os("ENOS_TOKEN_WRITE_HEADER").is_some_and(|v| v == "1") {
        if let Err(e) = std::fs::copy(&generated, &committed) {
            println!(
                "cargo:warning=could not update {}: {e}",
                committed.display()
            );
        }
    } else {
        println!(
            "cargo:warning=include/enos_token.h is out of date; run \
             `ENOS_TOKEN_WRITE_HEADER=1 cargo build` and commit it"
        );
    }
}

/// `target/<profile>/pkgconfig/enos-token.pc`, for programs built against
/// this build tree (`PKG_CONFIG_PATH=$PWD/target/release/pkgconfig`): the
/// checkout's `include/` and the profile's directory, with an rpath. Best
/// effort: a build never fails for it.
fn build_tree_pkg_config(crate_dir: &Path, out_dir: &Path) {
    // OUT_DIR is <profile dir>/build/<package>-<hash>/out.
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let (include, lib) = (crate_dir.join("include"), profile_dir.to_path_buf());
    let pc = format!(
        "# This build tree (written by build.rs); `cargo cinstall` installs the real one.\n\
         Name: enos-token\n\
         Description: EnOS API-gateway access tokens (build tree)\n\
         Version: {version}\n\
         Cflags: -I{include}\n\
         Libs: -L{lib} -lenos_token -Wl,-rpath,{lib}\n",
        include = include.display(),
        lib = lib.display(),
    );
    let directory = profile_dir.join("pkgconfig");
    let _ = std::fs::create_dir_all(&directory)
        .and_then(|()| std::fs::write(directory.join("enos-token.pc"), pc));
}

/// The version macros of the header, from Cargo.toml's version, so that C
/// code can test the version at compile time (as with libcurl's
/// `LIBCURL_VERSION_NUM`).
fn version_macros() -> String {
    let part = |name: &str| std::env::var(name).expect("cargo sets the version parts");
    let (major, minor, patch) = (
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    );
    format!(
        "\n/** The version of this header: {major}.{minor}.{patch} (see enos_version() for the library's). */\n\
         #define ENOS_TOKEN_VERSION_MAJOR {major}\n\
         #define ENOS_TOKEN_VERSION_MINOR {minor}\n\
         #define ENOS_TOKEN_VERSION_PATCH {patch}\n\
         #define ENOS_TOKEN_VERSION \"{major}.{minor}.{patch}\"\n\
         /** 0xXXYYZZ: major, minor, patch, one byte each; compare with >=. */\n\
         #define ENOS_TOKEN_VERSION_NUM ((ENOS_TOKEN_VERSION_MAJOR << 16) | (ENOS_TOKEN_VERSION_MINOR << 8) | ENOS_TOKEN_VERSION_PATCH)"
    )
}

fn same_contents(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}
