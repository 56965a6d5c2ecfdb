//! Plain-text tables of run reports (the JSON form is serde's).

use std::fmt::Write as _;

use crate::stats::{LatencySummary, RunReport};

/// A latency in µs as a short human string: `87µs`, `1.23ms`, `4.1s`.
pub fn fmt_latency(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A throughput with thousands separators: `123,456`.
pub fn fmt_rate(ops: f64) -> String {
    let n = ops.round() as u64;
    let digits = n.to_string();
    let head = digits.len() % 3;
    let mut groups: Vec<&str> = Vec::new();
    if head > 0 {
        groups.push(&digits[..head]);
    }
    for start in (head..digits.len()).step_by(3) {
        groups.push(&digits[start..start + 3]);
    }
    groups.join(",")
}

fn latency_cells(l: &LatencySummary) -> [String; 5] {
    [
        fmt_latency(l.p50_us),
        fmt_latency(l.p90_us),
        fmt_latency(l.p99_us),
        fmt_latency(l.p999_us),
        fmt_latency(l.max_us),
    ]
}

/// Renders rows of cells with columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        assert_eq!(row.len(), columns, "row with the wrong number of cells");
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        for (cell, w) in cells.zip(&widths) {
            if !first {
                out.push_str("  ");
            }
            first = false;
            let pad = w - cell.chars().count();
            // Text left, numbers right.
            if cell.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                let _ = write!(out, "{}{cell}", " ".repeat(pad));
            } else {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// One row per run.
pub fn runs_table(reports: &[RunReport]) -> String {
    let header = [
        "server",
        "workload",
        "sessions×out",
        "rate",
        "ops/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "errors",
        "client cpu",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let mut row = vec![
                r.server.clone(),
                r.label.clone(),
                format!("{}×{}", r.sessions, r.outstanding),
                r.rate.map_or("closed".into(), fmt_rate),
                fmt_rate(r.throughput),
            ];
            row.extend(latency_cells(&r.latency));
            row.push(errors_cell(r));
            row.push(format!("{:.0}%", r.client_cpu_percent));
            row
        })
        .collect();
    render(&header, &rows)
}

/// Errors as `0` or `-110 NodeExists ×3, lost 1`.
pub fn errors_cell(r: &RunReport) -> String {
    let mut parts: Vec<String> = r
        .errors
        .iter()
        .map(|e| format!("{} {}×{}", e.code, e.name, e.count))
        .collect();
    if r.unanswered > 0 {
        parts.push(format!("unanswered {}", r.unanswered));
    }
    if r.sessions_failed_to_connect > 0 {
        parts.push(format!("no-connect {}", r.sessions_failed_to_connect));
    }
    if r.sessions_lost > 0 {
        parts.push(format!("sessions lost {}", r.sessions_lost));
    }
    if r.protocol_errors > 0 {
        parts.push(format!("protocol errors {}", r.protocol_errors));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(", ")
    }
}

/// Per-kind latency rows for runs that mix request kinds.
pub fn kinds_table(reports: &[RunReport]) -> String {
    let header = [
        "server", "workload", "request", "count", "p50", "p90", "p99", "p99.9", "max",
    ];
    let mut rows = Vec::new();
    for r in reports.iter().filter(|r| r.by_kind.len() > 1) {
        for k in &r.by_kind {
            let mut row = vec![
                r.server.clone(),
                r.label.clone(),
                k.kind.to_owned(),
                k.latency.count.to_string(),
            ];
            row.extend(latency_cells(&k.latency));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        String::new()
    } else {
        render(&header, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(1234567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_latency(87.2), "87µs");
        assert_eq!(fmt_latency(1234.0), "1.23ms");
        assert_eq!(fmt_latency(4_100_000.0), "4.10s");
    }

    #[test]
    fn columns_align() {
        let text = render(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "a    bb");
        assert_eq!(lines[1], "---  --");
        assert_eq!(lines[2], "xyz   1");
    }
}
