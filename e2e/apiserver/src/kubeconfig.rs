//! Writing a kubeconfig that points kube-rs and kubectl at the emulator.

use std::path::Path;

pub fn render(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: castellan-emulator
  cluster:
    server: {url}
contexts:
- name: castellan-emulator
  context:
    cluster: castellan-emulator
    user: castellan-emulator
    namespace: default
current-context: castellan-emulator
users:
- name: castellan-emulator
  user: {{}}
preferences: {{}}
"
    )
}

pub fn write(path: &Path, url: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(url))?;
    std::fs::rename(tmp, path)
}
