//! Aligned text tables that fit the terminal: when a table is wider than
//! the terminal, the columns marked as cuttable are shortened (with `…`),
//! and the caller says how to see everything.

use std::io::IsTerminal;

/// A table: a header and rows of cells.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// Columns that may be cut to fit, the first cut first.
    cuttable: Vec<usize>,
}

/// The narrowest a cut column becomes.
const MIN_CUT: usize = 12;

impl Table {
    /// A table with `header`; `cuttable` lists the columns that may be cut.
    pub fn new(header: Vec<&'static str>, cuttable: Vec<usize>) -> Table {
        Table { header, rows: Vec::new(), cuttable }
    }

    /// Adds a row (as many cells as the header has).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The text, at most `width` columns wide when possible; and whether a
    /// cell was cut.
    pub fn render(&self, width: Option<usize>) -> (String, bool) {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * n.saturating_sub(1);
        let mut cut = false;
        if let Some(max) = width {
            for &c in &self.cuttable {
                let excess = total(&widths).saturating_sub(max);
                if excess == 0 || c >= n {
                    continue;
                }
                let floor = MIN_CUT.max(self.header[c].chars().count());
                let new = widths[c].saturating_sub(excess).max(floor);
                if new < widths[c] {
                    widths[c] = new;
                    cut = true;
                }
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::new();
            for (i, cell) in cells.enumerate().take(n) {
                let text = fit(cell, widths[i]);
                let len = text.chars().count();
                s.push_str(&text);
                if i + 1 < n {
                    s.push_str(&" ".repeat(widths[i] - len + 2));
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut self.header.iter().copied());
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        (out, cut)
    }
}

/// `s` in at most `width` characters, cut with `…`.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The width to fit: the terminal's when standard output is one (else
/// `$COLUMNS` if set); no limit when writing to a pipe or file.
pub fn terminal_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).filter(|c| *c > 0);
    if std::io::stdout().is_terminal() {
        let size = terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)).filter(|w| *w > 0);
        return Some(size.or(columns).unwrap_or(80));
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_by_cutting_the_cuttable_column() {
        let mut t = Table::new(vec!["A", "KEY"], vec![1]);
        t.row(vec!["x".into(), "a-very-long-key-that-does-not-fit".into()]);
        let (text, cut) = t.render(None);
        assert!(!cut && text.contains("a-very-long-key-that-does-not-fit"), "{text}");
        let (text, cut) = t.render(Some(20));
        assert!(cut, "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 20), "{text}");
        assert!(text.contains('…'), "{text}");
    }
}
