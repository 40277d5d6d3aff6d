//! Writing the programs' output files; errors name the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::NoiseError;

/// Creates `path` and lets `f` fill it through a buffer.
pub fn write_file(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), NoiseError> {
    let err = |e: std::io::Error| NoiseError::Io(format!("{}: {e}", path.display()));
    let mut w = BufWriter::new(File::create(path).map_err(err)?);
    f(&mut w).map_err(err)?;
    w.flush().map_err(err)
}

/// Prints `v` as one JSON object on one line of stdout.
pub fn print_json(v: &impl serde::Serialize) -> Result<(), NoiseError> {
    let text = serde_json::to_string(v).map_err(|e| NoiseError::Io(format!("json: {e}")))?;
    println!("{text}");
    Ok(())
}
