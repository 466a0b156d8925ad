//! The crate as read from its source: the module tree, what each module defines and
//! re-exports, and the arrows between files that its `use`s and paths make.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::text::{is_ident, matching_brace, strip, uses, words_after};
use super::{Arrows, ModPath};

/// One module: where it is written and what it defines, re-exports and imports.
#[derive(Default, Debug)]
struct Module {
    file: PathBuf,
    defs: BTreeSet<String>,
    reexports: BTreeMap<String, ModPath>,
    globs: Vec<ModPath>,
}

/// A piece of a file's text and the module it belongs to (a file's own module, or an inline
/// `mod x { .. }` inside it).
struct Region {
    module: ModPath,
    file: PathBuf,
    text: String,
}

/// The crate as read from its source.
pub(crate) struct Crate {
    modules: BTreeMap<ModPath, Module>,
    regions: Vec<Region>,
}

impl Crate {
    /// Reads the crate rooted at `src/lib.rs` under `root`.
    pub(crate) fn read(root: &Path) -> Crate {
        let mut krate = Crate { modules: BTreeMap::new(), regions: Vec::new() };
        krate.read_file(&root.join("src/lib.rs"), Vec::new());
        krate.index();
        krate
    }

    fn read_file(&mut self, file: &Path, module: ModPath) {
        let raw = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = strip(&raw);
        // Where child modules live: beside lib.rs/mod.rs, else in the folder named after the file.
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let child_dir =
            if name == "lib.rs" || name == "mod.rs" { dir.clone() } else { dir.join(name.trim_end_matches(".rs")) };
        let paths = path_attributes(&raw);
        self.read_region(file, &text, module, &child_dir, &dir, &paths);
    }

    /// Reads one module's text: its items, uses, inline modules and module files.
    fn read_region(
        &mut self,
        file: &Path,
        text: &str,
        module: ModPath,
        child_dir: &Path,
        attr_dir: &Path,
        paths: &HashMap<String, String>,
    ) {
        let mut own = String::with_capacity(text.len());
        let mut rest = text;
        // Inline `mod x { .. }`: a module of its own, in this file.
        while let Some((before, name, body, after)) = next_inline_mod(rest) {
            own.push_str(before);
            let mut child = module.clone();
            child.push(name.to_string());
            self.read_region(file, body, child, &child_dir.join(name), attr_dir, paths);
            rest = after;
        }
        own.push_str(rest);
        for name in words_after(&own, "mod") {
            let decl = own.split(&format!("mod {name}")).nth(1).unwrap_or("");
            if !decl.trim_start().starts_with(';') {
                continue;
            }
            let path = match paths.get(name) {
                Some(p) => attr_dir.join(p),
                None if child_dir.join(format!("{name}.rs")).exists() => child_dir.join(format!("{name}.rs")),
                None => child_dir.join(name).join("mod.rs"),
            };
            let mut child = module.clone();
            child.push(name.to_string());
            self.read_file(&path, child);
        }
        self.regions.push(Region { module: module.clone(), file: file.to_path_buf(), text: own });
        self.modules.insert(module, Module { file: file.to_path_buf(), ..Default::default() });
    }

    /// Once every module is known: what each defines and re-exports.
    fn index(&mut self) {
        for r in 0..self.regions.len() {
            let (module, text) = (self.regions[r].module.clone(), &self.regions[r].text);
            let mut defs = BTreeSet::new();
            for kw in ["struct", "enum", "union", "trait", "type", "fn", "const", "static", "macro_rules"] {
                for name in words_after(text, kw) {
                    if !matches!(name, "fn" | "mut" | "unsafe" | "async" | "extern") {
                        defs.insert(name.to_string());
                    }
                }
            }
            let mut reexports = BTreeMap::new();
            let mut globs = Vec::new();
            for (reexport, path, name) in uses(text) {
                if !reexport {
                    continue;
                }
                let abs = absolute(&module, &path, self);
                match name {
                    Some(n) => {
                        reexports.insert(n, abs);
                    }
                    None => globs.push(abs),
                }
            }
            let m = self.modules.get_mut(&module).expect("registered");
            m.defs = defs;
            m.reexports = reexports;
            m.globs = globs;
        }
    }

    /// The file defining what `path` (absolute) names, `None` for a module, an outside item or
    /// something not found.
    fn resolve(&self, path: &[String], depth: u32) -> Option<PathBuf> {
        if depth > 16 {
            return None;
        }
        let mut cur: ModPath = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let mut next = cur.clone();
            next.push(path[i].clone());
            if !self.modules.contains_key(&next) {
                break;
            }
            cur = next;
            i += 1;
        }
        let name = path.get(i)?;
        let m = self.modules.get(&cur)?;
        if m.defs.contains(name) {
            return Some(m.file.clone());
        }
        if let Some(target) = m.reexports.get(name) {
            let mut t = target.clone();
            t.extend(path[i + 1..].iter().cloned());
            return self.resolve(&t, depth + 1);
        }
        m.globs.iter().find_map(|g| {
            let mut t = g.clone();
            t.extend(path[i..].iter().cloned());
            self.resolve(&t, depth + 1)
        })
    }

    /// Whether `path` (absolute) names a module of the crate.
    fn is_module(&self, path: &[String]) -> bool {
        self.modules.contains_key(path)
    }

    /// The arrows between files: (from, to) → the names used.
    pub(crate) fn arrows(&self) -> Arrows {
        let mut arrows = Arrows::new();
        for r in &self.regions {
            let mut targets: Vec<ModPath> = Vec::new();
            let mut module_aliases: Vec<(String, ModPath)> = Vec::new();
            for (_, path, name) in uses(&r.text) {
                let abs = absolute(&r.module, &path, self);
                if self.is_module(&abs) {
                    if let Some(n) = name {
                        module_aliases.push((n, abs.clone()));
                    }
                }
                targets.push(abs);
            }
            for prefix in ["crate", "super", "self"] {
                for p in qualified_paths(&r.text, prefix) {
                    targets.push(absolute(&r.module, &p, self));
                }
            }
            for (alias, module) in &module_aliases {
                for p in qualified_paths(&r.text, alias) {
                    let mut abs = module.clone();
                    abs.extend(p.into_iter().skip(1));
                    targets.push(abs);
                }
            }
            for t in targets {
                if let Some(file) = self.resolve(&t, 0) {
                    if file != r.file {
                        arrows.entry((r.file.clone(), file)).or_default().insert(t.join("::"));
                    }
                }
            }
        }
        arrows
    }

    /// `impl` blocks of a type defined in another file: (impl's file, type's file, type).
    pub(crate) fn foreign_impls(&self) -> Vec<(PathBuf, PathBuf, String)> {
        let mut out = Vec::new();
        for r in &self.regions {
            let imported: HashMap<String, ModPath> =
                uses(&r.text).into_iter().filter_map(|(_, p, n)| Some((n?, absolute(&r.module, &p, self)))).collect();
            for ty in impl_self_types(&r.text) {
                let path: ModPath = ty.split("::").map(String::from).collect();
                let abs = if path.len() > 1 {
                    absolute(&r.module, &path, self)
                } else if let Some(p) = imported.get(&path[0]) {
                    p.clone()
                } else {
                    continue; // defined here, or not the crate's
                };
                if let Some(file) = self.resolve(&abs, 0) {
                    if file != r.file {
                        out.push((r.file.clone(), file, ty));
                    }
                }
            }
        }
        out
    }
}

/// `#[path = "x"] mod name;` attributes: name → x.
fn path_attributes(raw: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (i, _) in raw.match_indices("#[path") {
        let rest = &raw[i..];
        let Some(q1) = rest.find('"') else { continue };
        let Some(q2) = rest[q1 + 1..].find('"') else { continue };
        let file = &rest[q1 + 1..q1 + 1 + q2];
        if let Some(name) = words_after(&rest[q1 + 2 + q2..], "mod").first() {
            out.insert(name.to_string(), file.to_string());
        }
    }
    out
}

/// The first inline `mod name { body }` of `text`: (text before, name, body, text after).
fn next_inline_mod(text: &str) -> Option<(&str, &str, &str, &str)> {
    let mut from = 0;
    while let Some(pos) = text[from..].find("mod ") {
        let at = from + pos;
        from = at + 4;
        if at > 0 && is_ident(text[..at].chars().next_back().unwrap_or(' ')) {
            continue;
        }
        let rest = &text[at + 4..];
        let name_len = rest.chars().take_while(|c| is_ident(*c)).count();
        let after_name = rest[name_len..].trim_start();
        if name_len == 0 || !after_name.starts_with('{') {
            continue;
        }
        let open = text.len() - after_name.len();
        let close = matching_brace(text, open);
        return Some((&text[..at], &rest[..name_len], &text[open + 1..close], &text[(close + 1).min(text.len())..]));
    }
    None
}

/// Every path `prefix::a::b…` in `text` (`prefix` as a whole word), as segments.
fn qualified_paths(text: &str, prefix: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    let pat = format!("{prefix}::");
    let mut from = 0;
    while let Some(pos) = text[from..].find(&pat) {
        let at = from + pos;
        from = at + pat.len();
        let before = text[..at].chars().next_back().unwrap_or(' ');
        if is_ident(before) || (before == ':' && prefix != "crate") {
            continue;
        }
        let mut segs = vec![prefix.to_string()];
        let mut rest = &text[at + pat.len()..];
        loop {
            let n = rest.chars().take_while(|c| is_ident(*c)).count();
            if n == 0 {
                break;
            }
            segs.push(rest[..n].to_string());
            rest = &rest[n..];
            match rest.strip_prefix("::") {
                Some(r) if r.starts_with(|c: char| is_ident(c)) => rest = r,
                _ => break,
            }
        }
        if segs.len() > 1 {
            out.push(segs);
        }
    }
    out
}

/// The self types of the `impl` blocks in `text` (`impl<..> Trait for Type` → `Type`).
fn impl_self_types(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("impl") {
        let before = text[..at].chars().next_back().unwrap_or(' ');
        let after = text[at + 4..].chars().next().unwrap_or(' ');
        if is_ident(before) || !(after == '<' || after.is_whitespace()) {
            continue;
        }
        let mut rest = &text[at + 4..];
        if rest.starts_with('<') {
            let mut depth = 0;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &rest[end..];
        }
        let header = &rest[..rest.find(['{', ';']).unwrap_or(rest.len())];
        let header = header.split(" where").next().unwrap_or(header);
        let ty = match header.find(" for ") {
            Some(i) => &header[i + 5..],
            None => header,
        };
        let ty = ty.trim().trim_start_matches('&').trim_start_matches("dyn ").trim();
        let path: String = ty.chars().take_while(|c| is_ident(*c) || *c == ':').collect();
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

/// `path` as seen from `module`, made absolute (`crate::`, `super::`, `self::`, a child
/// module's name); anything else (std, other crates) is left as it is.
fn absolute(module: &[String], path: &[String], krate: &Crate) -> ModPath {
    let mut cur: ModPath = module.to_vec();
    let mut i = 0;
    match path.first().map(String::as_str) {
        Some("crate") => {
            cur.clear();
            i = 1;
        }
        Some("self") => i = 1,
        Some("super") => {
            while path.get(i).map(String::as_str) == Some("super") {
                cur.pop();
                i += 1;
            }
        }
        Some(first) => {
            let mut child = cur.clone();
            child.push(first.to_string());
            if !krate.is_module(&child) {
                return path.to_vec();
            }
        }
        None => {}
    }
    cur.extend(path[i..].iter().cloned());
    cur
}
