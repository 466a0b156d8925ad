//! The file graph judged: its cycles, and the arrows that do not point down the layers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::krate::Crate;
use super::Arrows;

/// The layers, lowest first: a file may use files of its own folder or of a lower rank only.
const LAYERS: &[(&str, u32)] = &[
    ("sys", 0),
    ("base", 1),
    ("io", 2),
    ("logger", 2),
    ("work", 2),
    ("codec", 3),
    ("tls", 3),
    ("proxy", 3),
    ("context.rs", 3),
    ("conn", 4),
    ("reactor", 5),
    ("server", 6),
    ("client", 6),
    ("lib.rs", 7),
];

/// The layer of `file` (relative to `src`): its rank, and the folder or file that names it.
pub(crate) fn layer(src: &Path, file: &Path) -> (u32, String) {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let top = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    let rank = LAYERS.iter().find(|(n, _)| *n == top).map(|(_, r)| *r);
    (rank.unwrap_or_else(|| panic!("{top} is in no layer: add it to LAYERS in tests/layers.rs")), top)
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles(arrows: &Arrows) -> Vec<Vec<PathBuf>> {
    let mut next: BTreeMap<&PathBuf, Vec<&PathBuf>> = BTreeMap::new();
    for (a, b) in arrows.keys() {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    struct St<'a> {
        index: HashMap<&'a PathBuf, usize>,
        low: HashMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(v: &'a PathBuf, next: &BTreeMap<&'a PathBuf, Vec<&'a PathBuf>>, st: &mut St<'a>) {
        let i = st.index.len();
        st.index.insert(v, i);
        st.low.insert(v, i);
        st.stack.push(v);
        for &w in &next[v] {
            if !st.index.contains_key(w) {
                visit(w, next, st);
                let lw = st.low[w];
                st.low.entry(v).and_modify(|l| *l = (*l).min(lw));
            } else if st.stack.contains(&w) {
                let iw = st.index[w];
                st.low.entry(v).and_modify(|l| *l = (*l).min(iw));
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                st.out.push(comp);
            }
        }
    }
    let mut st = St { index: HashMap::new(), low: HashMap::new(), stack: Vec::new(), out: Vec::new() };
    for v in next.keys() {
        if !st.index.contains_key(v) {
            visit(v, &next, &mut st);
        }
    }
    st.out
}

/// Everything wrong with the crate at `root`, one line each.
pub(crate) fn problems(root: &Path) -> (Vec<String>, Arrows) {
    let src = root.join("src");
    let krate = Crate::read(root);
    let arrows = krate.arrows();
    let rel = |p: &Path| p.strip_prefix(&src).unwrap_or(p).display().to_string();
    let mut out = Vec::new();
    for comp in cycles(&arrows) {
        let names: Vec<String> = comp.iter().map(|p| rel(p)).collect();
        let mut why = Vec::new();
        for ((a, b), used) in &arrows {
            if comp.contains(a) && comp.contains(b) {
                why.push(format!("{} -> {} ({})", rel(a), rel(b), used.iter().cloned().collect::<Vec<_>>().join(", ")));
            }
        }
        out.push(format!("import cycle between {}: {}", names.join(", "), why.join("; ")));
    }
    for ((a, b), used) in &arrows {
        let ((ra, la), (rb, lb)) = (layer(&src, a), layer(&src, b));
        if la != lb && ra <= rb {
            let names = used.iter().cloned().collect::<Vec<_>>().join(", ");
            out.push(format!("{} (layer {la}) uses {} (layer {lb}), not below it: {names}", rel(a), rel(b)));
        }
    }
    for (file, ty_file, ty) in krate.foreign_impls() {
        out.push(format!(
            "{} has an impl of {ty}, which {} defines: impls belong with their type",
            rel(&file),
            rel(&ty_file)
        ));
    }
    (out, arrows)
}
