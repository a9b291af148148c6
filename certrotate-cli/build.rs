//! Links the functions a local-mode run executes together at the start of `.text`
//! (`hot-text.ld`, written by `tools/bench/hot_text.py`), in optimised builds for Linux/glibc.
//!
//! A run executes ~1 MB of a 10-13 MB `.text`, spread over most of it; the kernel maps
//! each touched page's 64 KiB neighbourhood, so the scattered megabyte cost ~6 MB of peak
//! RSS. Packed together it costs ~2 (BENCHMARKS.md, round 5). The script only adds an
//! output section before `.text` (`INSERT BEFORE`), so the default layout is otherwise
//! kept; a function it names that no longer exists is simply not moved.
//!
//! The cost is link time: lld matches every input section against the script's ~5,700
//! patterns, ~12 s of one core for the `release` binary (0.4 s without). GNU ld and lld
//! (Rust's default linker on x86_64 Linux) read such scripts; with a linker that does not
//! (mold, gold), or to iterate on a release build, set `CERTROTATE_HOT_TEXT=off`.

fn main() {
    println!("cargo::rerun-if-changed=hot-text.ld");
    println!("cargo::rerun-if-changed=build.rs");
    // `CERTROTATE_HOT_TEXT=off`: the default layout, which tools/bench/hot_text.py reads.
    println!("cargo::rerun-if-env-changed=CERTROTATE_HOT_TEXT");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // `PROFILE` is "release" for every optimised profile (release, dist, image, bench):
    // debug and test builds, which are linked often and measured never, keep the default
    // layout.
    // mold and gold do not read such a script: a build configured for them (`-fuse-ld=`
    // in the rustflags, or a linker named so) keeps the default layout rather than failing.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let linker = var("RUSTC_LINKER");
    let other_linker = ["mold", "gold"].iter().any(|name| {
        flags.contains(&format!("fuse-ld={name}"))
            || std::path::Path::new(&linker)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().contains(name))
    });
    if var("PROFILE") == "release"
        && var("CERTROTATE_HOT_TEXT") != "off"
        && !other_linker
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        let script = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-text.ld");
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
