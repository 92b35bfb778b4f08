//! Reading back the kubectl-style tables the demo prints: shared by the demo's own tests and the
//! tests that run the built binary (`tests/demo.rs` includes this file).

/// The rows of the table printed under `$ <command>`, split on runs of spaces (no cell of the
/// demo's tables contains two spaces in a row).
pub fn printed_table(output: &str, command: &str) -> Vec<Vec<String>> {
    let mut lines = output
        .lines()
        .skip_while(|l| l.trim() != format!("$ {command}"))
        .skip(1);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if line.trim().is_empty() || line.starts_with('…') {
            break;
        }
        rows.push(
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    rows
}
