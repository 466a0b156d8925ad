//! The report's two plots, as hand-written SVG: CPU per message by shape, and as connections
//! grow.

use std::fmt::Write as _;

use crate::plan::thousands;
use crate::report::{cpu_of, fmt, kinds_seen, Results};
use crate::server::Kind;

fn svg_header(w: u32, h: u32, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        w / 2
    )
}

fn legend(s: &mut String, x: f64, y: f64, kinds: &[Kind]) {
    for (i, kind) in kinds.iter().enumerate() {
        let yy = y + i as f64 * 18.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            yy - 10.0,
            kind.color(),
            x + 18.0,
            yy,
            kind.name()
        );
    }
}

fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|m| *m >= v).unwrap_or(10.0 * mag)
}

fn y_axis(s: &mut String, left: f64, top: f64, bottom: f64, right: f64, max: f64, label: &str) {
    for t in 0..=5 {
        let v = max * t as f64 / 5.0;
        let y = bottom - (bottom - top) * t as f64 / 5.0;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            fmt(v, if max < 5.0 { 1 } else { 0 })
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">{label}</text>",
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
}

/// Server CPU per message of every shape, one bar per server.
pub fn bar_chart(names: &[String], results: &Results) -> String {
    let kinds = kinds_seen(results);
    let (w, h) = (900u32, 420u32);
    let (left, right, top, bottom) = (60.0, w as f64 - 160.0, 40.0, h as f64 - 70.0);
    let mut s = svg_header(w, h, "Server CPU time per message (µs, lower is better; 1 IO thread)");
    let max = nice_max(
        names
            .iter()
            .enumerate()
            .flat_map(|(i, _)| kinds.iter().map(move |&k| cpu_of(results, i, k)))
            .filter(|v| !v.is_nan())
            .fold(0.0, f64::max),
    );
    y_axis(&mut s, left, top, bottom, right, max, "CPU µs / message");
    let group = (right - left) / names.len().max(1) as f64;
    let bar = group * 0.8 / kinds.len() as f64;
    for (i, name) in names.iter().enumerate() {
        let x0 = left + group * i as f64 + group * 0.1;
        for (j, kind) in kinds.iter().enumerate() {
            let v = cpu_of(results, i, *kind);
            if v.is_nan() {
                continue;
            }
            let hgt = (bottom - top) * v / max;
            let x = x0 + bar * j as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                bottom - hgt,
                bar - 2.0,
                kind.color(),
                x + bar / 2.0,
                bottom - hgt - 3.0,
                fmt(v, if v < 10.0 { 2 } else { 1 })
            );
        }
        let label = name.split(':').next().unwrap_or(name).trim_start_matches("ping-pong ");
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            x0 + group * 0.4,
            bottom + 18.0
        );
    }
    let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>");
    legend(&mut s, right + 20.0, top + 20.0, &kinds);
    s.push_str("</svg>\n");
    s
}

/// Server CPU per message as connections grow, one line per server.
pub fn scaling_chart(conns: &[usize], first: usize, results: &Results) -> String {
    let kinds = kinds_seen(results);
    let (w, h) = (760u32, 420u32);
    let (left, right, top, bottom) = (60.0, w as f64 - 160.0, 40.0, h as f64 - 60.0);
    let mut s = svg_header(w, h, "Server CPU per message as connections grow (ping-pong, 100 B)");
    let max = nice_max(
        (0..conns.len())
            .flat_map(|i| kinds.iter().map(move |&k| cpu_of(results, first + i, k)))
            .filter(|v| !v.is_nan())
            .fold(0.0, f64::max),
    );
    y_axis(&mut s, left, top, bottom, right, max, "CPU µs / message");
    let (lo, hi) =
        (conns.first().map_or(1.0, |&c| (c as f64).log10()), conns.last().map_or(1.0, |&c| (c as f64).log10()));
    let x_of = |c: usize| left + 20.0 + (right - left - 40.0) * ((c as f64).log10() - lo) / (hi - lo).max(1e-9);
    for &c in conns {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(c),
            bottom + 18.0,
            thousands(c)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">connections (log scale)</text>",
        (left + right) / 2.0,
        bottom + 40.0
    );
    for kind in kinds.iter() {
        let pts: Vec<(f64, f64)> = conns
            .iter()
            .enumerate()
            .filter_map(|(i, &c)| {
                let v = cpu_of(results, first + i, *kind);
                (!v.is_nan()).then(|| (x_of(c), bottom - (bottom - top) * v / max))
            })
            .collect();
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            kind.color()
        );
        for (x, y) in pts {
            let _ = writeln!(s, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{}\"/>", kind.color());
        }
    }
    let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>");
    legend(&mut s, right + 20.0, top + 20.0, &kinds);
    s.push_str("</svg>\n");
    s
}
