//! Pass/fail counts per target and suite, and the final table.

use std::fmt;

#[derive(Clone, Copy, Default, Debug)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
}

impl Counts {
    pub const FAIL: Counts = Counts { passed: 0, failed: 1 };
    pub const PASS: Counts = Counts { passed: 1, failed: 0 };

    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.passed, self.failed)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Cell {
    /// The suite does not exist for this target (e.g. kernel boots on x86_64).
    NotApplicable,
    /// Applicable but not selected with `--suite`.
    Skipped,
    Ran(Counts),
}

impl Cell {
    /// Adds counts to a cell, turning "not run yet" into a count.
    pub fn add(&mut self, c: Counts) {
        match self {
            Cell::Ran(have) => have.add(c),
            _ => *self = Cell::Ran(c),
        }
    }
}

/// One row of the table: a target and its cells, one per column name in `Table::columns`.
pub struct Row {
    pub target: &'static str,
    pub cells: Vec<Cell>,
    pub sizes: Vec<Option<u64>>,
}

pub struct Table {
    pub title: &'static str,
    pub columns: Vec<String>,
    /// Names of the programs whose stripped size is reported.
    pub sized: Vec<String>,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for cell in self.rows.iter().flat_map(|r| &r.cells) {
            if let Cell::Ran(c) = cell {
                total.add(*c);
            }
        }
        total
    }

    pub fn print(&self) {
        let mut header = vec![String::from("target")];
        header.extend(self.columns.iter().cloned());
        header.extend(self.sized.iter().map(|p| format!("{p} size")));
        let mut lines = vec![header];
        for row in &self.rows {
            let mut line = vec![row.target.to_string()];
            line.extend(row.cells.iter().map(|c| match c {
                Cell::NotApplicable => "-".to_string(),
                Cell::Skipped => "skip".to_string(),
                Cell::Ran(c) => c.to_string(),
            }));
            line.extend(row.sizes.iter().map(|s| match s {
                Some(b) => format!("{b} B"),
                None => "-".to_string(),
            }));
            lines.push(line);
        }
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
            .collect();
        println!("\n{} (passed/failed):", self.title);
        for line in &lines {
            let cols: Vec<String> = line.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
            println!("  {}", cols.join("  ").trim_end());
        }
    }
}
