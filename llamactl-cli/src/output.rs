//! Printing results: tables for people (coloured only on a terminal), or the API's JSON as the
//! server sent it, or the same as YAML.

use std::io::{IsTerminal, Write};

use comfy_table::{Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, presets};
use serde_json::Value;

use crate::cli::Output;
use crate::error::CliError;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// Format.
    pub format: Output,
    /// Colours on.
    pub color: bool,
    /// Standard output is a terminal (tables fit its width).
    pub tty: bool,
    /// Only what scripts need.
    pub quiet: bool,
}

impl Printer {
    /// A printer for these flags, colouring only a terminal without NO_COLOR.
    pub fn new(format: Output, no_color: bool, quiet: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = tty && !no_color && std::env::var_os("NO_COLOR").is_none();
        Self { format, color, tty, quiet }
    }

    /// Prints `raw` as JSON or YAML, or calls `table` to print it for people.
    pub fn print(&self, raw: &Value, table: impl FnOnce(&Self)) -> Result<(), CliError> {
        match self.format {
            Output::Json => {
                out(&serde_json::to_string_pretty(raw).map_err(|e| CliError::Other(e.to_string()))?);
            }
            Output::Yaml => {
                out(serde_norway::to_string(raw).map_err(|e| CliError::Other(e.to_string()))?.trim_end());
            }
            Output::Table => table(self),
        }
        Ok(())
    }

    /// A table with these column headers, in the plain style of `kubectl get`. On a terminal it
    /// fits the terminal's width by wrapping the column `wrap` (a path, a reason); the others
    /// keep their width. Piped, lines are never wrapped.
    pub fn table(&self, header: &[&str], wrap: usize) -> Table {
        let mut table = Table::new();
        table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
        if !self.tty {
            table.force_no_tty();
        }
        table.set_header(header.iter().map(|h| self.bold(h)));
        // No leading space; two between columns (the last column's trailing ones are trimmed).
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, 2));
            if index != wrap {
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        table
    }

    /// A bold cell (plain without colours).
    pub fn bold(&self, text: &str) -> Cell {
        let cell = Cell::new(text);
        if self.color { cell.add_attribute(Attribute::Bold) } else { cell }
    }

    /// Labelled values, one per line, aligned: `Status:   running`.
    pub fn fields(&self, rows: &[(&str, String)]) {
        let mut table = Table::new();
        table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
        if !self.tty {
            table.force_no_tty();
        }
        for (label, value) in rows {
            table.add_row(vec![self.bold(&format!("{label}:")), Cell::new(value)]);
        }
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        show(&table);
    }

    /// A status, coloured by meaning.
    pub fn status(&self, status: &str) -> Cell {
        let color = match status {
            "running" => Color::Green,
            "starting" | "stopping" | "restarting" => Color::Yellow,
            "failed" => Color::Red,
            _ => Color::Reset,
        };
        let cell = Cell::new(status);
        if self.color { cell.fg(color) } else { cell }
    }

    /// A plain line (not printed with -q).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            out(line.as_ref());
        }
    }
}

/// Prints a line on standard output. A reader that went away (`llamactl ... | head`) ends the
/// program quietly, as it would end a shell tool.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {error}");
        std::process::exit(1);
    }
}

/// Prints a table without trailing spaces on its lines.
pub fn show(table: &Table) {
    let text = table.to_string();
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    out(&lines.join("\n"));
}

/// A value for a table cell: text as it is, `-` for nothing, JSON otherwise.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A time as `2026-11-22 17:05:01Z`, `-` for none.
pub fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// A unix time (seconds) as [`time`] prints it.
pub fn unix_time(seconds: Option<i64>) -> String {
    time(seconds.and_then(|s| chrono::DateTime::from_timestamp(s, 0)))
}
