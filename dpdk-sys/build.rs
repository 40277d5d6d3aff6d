//! Generates bindings to the system DPDK at build time and compiles C wrappers for its
//! static inline functions (the whole fast path: rx/tx burst, mbuf alloc/free).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SETUP_HINT: &str = "run `sudo scripts/setup.sh` (or `apt-get install dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev`)";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            panic!("dpdk-sys: libdpdk >= 22.11 not found by pkg-config ({first}); {SETUP_HINT}");
        }
    };
    println!("cargo:version={}", lib.version);

    // pkg_config drops `-include rte_config.h` and `-march`; both are needed for the
    // headers to parse the same way DPDK itself was built.
    let cflags = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("dpdk-sys: cannot run pkg-config");
    let cflags: Vec<String> = String::from_utf8_lossy(&cflags.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let static_fns = out.join("static_fns");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_.*")
        .allowlist_function("dpdk_sys_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // Packed tunnel headers that bindgen cannot lay out; we never touch them.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_l2tpv2_common_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_gtp_psc_type0_hdr")
        .opaque_type("rte_gtp_psc_type1_hdr")
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_.*")
        .derive_debug(false)
        .derive_default(true)
        .layout_tests(true)
        .generate_cstr(true)
        .clang_macro_fallback()
        .wrap_static_fns(true)
        .wrap_static_fns_path(&static_fns)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!("dpdk-sys: bindgen failed on the DPDK headers: {e}; {SETUP_HINT}")
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("dpdk-sys: cannot write bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(static_fns.with_extension("c"))
        .file("shim.c")
        .include(".")
        .opt_level(3)
        .warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("dpdk_sys_wrappers");
}
