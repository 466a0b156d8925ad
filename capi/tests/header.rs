//! `include/kingpin.h` is what cbindgen makes of the crate today: a change to the exported
//! API that was not followed by `make header` fails here (and so in CI).

use std::path::Path;

#[test]
fn the_checked_in_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not read the crate")
        .write(&mut generated);
    let path = crate_dir.join("include/kingpin.h");
    if std::env::var_os("KINGPIN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write kingpin.h");
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "capi/include/kingpin.h is not what cbindgen makes of capi/src: run `make header` and commit it"
    );
}
