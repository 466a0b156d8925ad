//! Reading Rust source as text: comments and literals blanked out, items, `use` trees, paths.

use super::ModPath;

/// Blanks out comments and the insides of string and char literals, keeping every newline.
pub(crate) fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(b.get(i + 1), Some('"') | Some('#')) && (i == 0 || !is_ident(b[i - 1])) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(b[j]));
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (b.get(i + 2) == Some(&'\'') || b.get(i + 1) == Some(&'\\')) {
            // A char literal ('x' or an escape); a lifetime ('a) has no closing quote.
            out.push('\'');
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

pub(crate) fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifiers following `keyword` as a whole word in `text` (e.g. the name after `fn`).
pub(crate) fn words_after<'a>(text: &'a str, keyword: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(keyword) {
        let at = from + pos;
        from = at + keyword.len();
        let before_ok = at == 0 || !is_ident(text[..at].chars().next_back().unwrap_or(' '));
        let rest = &text[from..];
        let after_ok = rest.starts_with(|c: char| c.is_whitespace() || c == '!');
        if !(before_ok && after_ok) {
            continue;
        }
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '!');
        let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        if !name.is_empty() {
            out.push(&rest[..name.len()]);
        }
    }
    out
}

/// The index of the `}` closing the `{` at `open`.
pub(crate) fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Splits the use tree `tree` (after `use`) into full paths, each with the name it binds
/// (`None` for a glob).
fn use_paths(prefix: &[String], tree: &str, out: &mut Vec<(ModPath, Option<String>)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: ModPath =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base: ModPath = prefix.iter().cloned().chain(head).collect();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_paths(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        use_paths(&base, &inner[start..], out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full: ModPath = prefix.to_vec();
    for seg in path.split("::").map(str::trim).filter(|s| !s.is_empty()) {
        if seg == "self" && !full.is_empty() {
            continue;
        }
        full.push(seg.to_string());
    }
    if full.last().is_some_and(|s| s == "*") {
        full.pop();
        out.push((full, None));
    } else {
        let name = alias.or_else(|| full.last().cloned());
        out.push((full, name));
    }
}

/// The `use` declarations of `text`: (is a re-export, full path, bound name).
pub(crate) fn uses(text: &str) -> Vec<(bool, ModPath, Option<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find("use ") {
        let at = from + pos;
        from = at + 4;
        if at > 0 && is_ident(text[..at].chars().next_back().unwrap_or(' ')) {
            continue;
        }
        let Some(end) = text[at..].find(';') else { break };
        let line_start = text[..at].rfind(['\n', ';', '{', '}']).map_or(0, |i| i + 1);
        let reexport = text[line_start..at].trim_start().starts_with("pub");
        let mut paths = Vec::new();
        use_paths(&[], &text[at + 4..at + end], &mut paths);
        out.extend(paths.into_iter().map(|(p, n)| (reexport, p, n)));
        from = at + end;
    }
    out
}
