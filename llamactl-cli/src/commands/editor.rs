//! `llamactl instance edit NAME` without flags: the options, as YAML, in the user's editor
//! (`$VISUAL`, else `$EDITOR`, else `vi` on a terminal). A failed edit is never lost: the file
//! is kept and its path shown.

use std::io::{IsTerminal, Write};
use std::path::Path;

use serde_json::Value;

use crate::error::CliError;

/// What the user did in the editor.
#[derive(Debug)]
pub enum Edited {
    /// Emptied the file: nothing to do.
    Cancelled,
    /// Saved the same options.
    Unchanged,
    /// New options, and the file they came from (deleted when dropped, unless kept).
    Changed {
        /// The options as edited.
        options: Value,
        /// The edited file.
        file: tempfile::TempPath,
    },
}

/// The editor command, if there is one to use.
fn editor() -> Option<String> {
    let configured =
        ["VISUAL", "EDITOR"].iter().find_map(|var| std::env::var(var).ok().filter(|e| !e.trim().is_empty()));
    configured.or_else(|| (std::io::stdin().is_terminal() && std::io::stdout().is_terminal()).then(|| "vi".to_owned()))
}

/// Whether an editor can be used (else `edit` needs flags).
pub fn available() -> bool {
    editor().is_some()
}

/// Keeps the edited file and says how to apply it later.
pub fn keep(name: &str, file: tempfile::TempPath) -> String {
    match file.keep() {
        Ok(path) => format!(
            "your edit is kept in {path}; fix it and run: llamactl instance edit {name} -f {path}",
            path = path.display()
        ),
        Err(error) => format!("your edit could not be kept: {error}"),
    }
}

fn write_options(path: &Path, name: &str, options: &Value) -> Result<(), CliError> {
    let yaml = serde_norway::to_string(options).map_err(|e| CliError::Other(e.to_string()))?;
    let mut file = std::fs::File::create(path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    write!(
        file,
        "# The options of instance {name}. Save and quit to apply them (a running instance restarts);\n\
         # empty the file to cancel.\n{yaml}"
    )
    .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
}

/// Opens `options` in the editor and reads back what was saved.
pub fn edit(name: &str, options: &Value) -> Result<Edited, CliError> {
    let editor = editor().ok_or_else(|| CliError::Usage("no editor: set VISUAL or EDITOR".into()))?;
    let path = tempfile::Builder::new()
        .prefix(&format!("llamactl-edit-{name}-"))
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| CliError::Other(format!("cannot create a file to edit: {e}")))?
        .into_temp_path();
    write_options(&path, name, options)?;
    // Through the shell, so that EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&*path)
        .status()
        .map_err(|e| CliError::Other(format!("cannot run the editor ({editor}): {e}")))?;
    if !status.success() {
        return Err(CliError::Other(format!("the editor ({editor}) failed ({status}); nothing was changed")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    if text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Ok(Edited::Cancelled);
    }
    let edited: Value = match serde_norway::from_str(&text) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return Err(CliError::Usage(format!("the options must be a mapping of keys; {}", keep(name, path)))),
        Err(error) => return Err(CliError::Usage(format!("{error}; {}", keep(name, path)))),
    };
    if &edited == options {
        return Ok(Edited::Unchanged);
    }
    Ok(Edited::Changed { options: edited, file: path })
}
