//! Reading the env file `e2e/kube/start` writes: `KEY='value'` lines with shell single-quoting
//! (`'a'\''b'` is `a'b`). Shared by the test harnesses of the castellan and castellan-apiserver
//! crates, which include this file with `#[path]`.

use std::collections::BTreeMap;

/// The variables of an env file; lines that are not `KEY=value` are skipped.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut value = String::new();
        let mut quoted = false;
        for c in rest.chars() {
            match c {
                '\'' => quoted = !quoted,
                '\\' if !quoted => {}
                c => value.push(c),
            }
        }
        vars.insert(key.to_string(), value);
    }
    vars
}
