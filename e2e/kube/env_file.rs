//! Reading the env file `e2e/kube/start` writes: `KEY='value'` lines with shell single-quoting
//! (`'a'\''b'` is `a'b`). Shared by the test harnesses of the castellan and castellan-apiserver
//! crates, which include this file with `#[path]`.

use std::collections::BTreeMap;
use std::path::Path;

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

/// The variables of the env file `var` names, which must hold each of `required`. Panics with
/// what to do otherwise: a test that selected the real apiserver must fail, never skip.
pub fn load(var: &str, env_file: &Path, required: &[&str]) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(env_file).unwrap_or_else(|e| {
        panic!(
            "{var}={}: cannot read the env file ({e}); start a control plane with \
             `e2e/kube/start {}` or unset {var} to use the emulator",
            env_file.display(),
            env_file.display()
        )
    });
    let vars = parse(&text);
    for key in required {
        assert!(
            vars.contains_key(*key),
            "{}: no {key}; not an env file of e2e/kube/start",
            env_file.display()
        );
    }
    vars
}
