//! The crate's structure, checked: no import cycle between files, every arrow pointing down
//! the layers (`sys` ← `base` ← `io`, `logger`, `work` ← `codec`, `context.rs` ← `conn` ←
//! `reactor` ← `server`, `client` ← `lib.rs`), and every `impl` in the file of its type (so no
//! file's items lean on a file above it through an impl placed elsewhere, the way
//! `cargo modules dependencies` attributes them).
//!
//! The graph is read from the source itself: the module tree from `mod` declarations, then
//! every `use` and every `crate::`/`super::`/`self::` path (and paths through a module imported
//! by name), resolved through re-exports to the file that defines the item. Facades — files
//! that only declare modules and re-export, like `lib.rs` and `mod.rs` — are passed through,
//! never nodes. Run with `--nocapture` to see the layers and the arrows between them.

mod graph;
mod krate;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use graph::{layer, problems};

/// A module's path from the crate root, segment by segment.
type ModPath = Vec<String>;

/// The arrows between files: (from, to) → the paths that make them.
type Arrows = BTreeMap<(PathBuf, PathBuf), BTreeSet<String>>;

#[test]
fn no_import_cycle_and_every_arrow_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (problems, arrows) = problems(root);
    let src = root.join("src");
    // The reading itself is checked, so that a broken reader cannot pass for a clean crate.
    let files: BTreeSet<&PathBuf> = arrows.keys().flat_map(|(a, b)| [a, b]).collect();
    assert!(files.len() >= 60, "only {} files have arrows: the reader is broken", files.len());
    assert!(arrows.len() >= 200, "only {} arrows: the reader is broken", arrows.len());
    for (a, b) in [
        ("reactor/event_loop.rs", "conn/view.rs"),
        ("server/acceptor.rs", "reactor/role.rs"),
        ("client/connector.rs", "conn/target.rs"),
        ("conn/outbound.rs", "sys/rw.rs"),
        ("io/buffer.rs", "sys/rw.rs"),
    ] {
        assert!(arrows.contains_key(&(src.join(a), src.join(b))), "the reader missed {a} -> {b}");
    }
    let mut between: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (a, b) in arrows.keys() {
        let (la, lb) = (layer(&src, a).1, layer(&src, b).1);
        if la != lb {
            *between.entry((la, lb)).or_default() += 1;
        }
    }
    println!("{} files, {} arrows between files; between layers:", files.len(), arrows.len());
    for ((a, b), n) in &between {
        println!("  {a:>10} -> {b:<10} {n:>3}");
    }
    assert!(problems.is_empty(), "the layering is broken:\n{}", problems.join("\n"));
}

/// A crate written to a temporary folder: `files` are (path under `src/`, text).
fn tiny_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join("src").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn the_checker_finds_a_cycle_a_wrong_arrow_and_a_stray_impl() {
    let dir = tiny_crate(&[
        ("lib.rs", "//! docs: crate::base::slab::Slab is not an import\nmod base;\nmod conn;\npub use conn::a::A;\n"),
        ("base/mod.rs", "pub(crate) mod slab;\n"),
        ("base/slab.rs", "use crate::A;\npub struct Slab;\n"),
        ("conn/mod.rs", "pub(crate) mod a;\npub(crate) mod b;\n"),
        ("conn/a.rs", "use super::b;\npub struct A;\nfn f() { b::g() }\n"),
        (
            "conn/b.rs",
            "pub fn g() { let _ = \"crate::base::slab::Slab\"; }\nimpl crate::conn::a::A { fn h() {} }\n\
             #[cfg(test)]\nmod tests {\n    use super::super::a::A;\n}\n",
        ),
    ]);
    let (problems, arrows) = problems(dir.path());
    let src = dir.path().join("src");
    let has = |a: &str, b: &str| arrows.contains_key(&(src.join(a), src.join(b)));
    assert!(has("conn/a.rs", "conn/b.rs"), "a path through a module imported by name");
    assert!(has("conn/b.rs", "conn/a.rs"), "an import in an inline test module");
    assert!(has("base/slab.rs", "conn/a.rs"), "a re-export of the root");
    assert!(!has("conn/b.rs", "base/slab.rs"), "a path in a string is no import");
    assert!(!has("lib.rs", "base/slab.rs"), "a comment is no import");
    assert!(has("lib.rs", "conn/a.rs"), "a re-export is an arrow of the facade");
    let text = problems.join("\n");
    assert!(text.contains("import cycle between"), "{text}");
    assert!(text.contains("base/slab.rs (layer base) uses conn/a.rs"), "{text}");
    assert!(text.contains("conn/b.rs has an impl of crate::conn::a::A"), "{text}");
}
