//! Duplicate keys in a raw JSON body (rejected by Strict field validation, warned otherwise).
//!
//! serde_json keeps the last of duplicate keys silently, so the body is scanned once more here.
//! Paths are reported as the strict decoder reports them: `spec.size`, `spec.items[0].name`.

/// The paths of duplicate keys in `raw_json`, in document order. Malformed JSON yields what was
/// found before the error (the decoder reports malformed bodies itself).
pub fn duplicate_fields(raw_json: &[u8]) -> Vec<String> {
    let mut s = Scanner {
        b: raw_json,
        i: 0,
        found: Vec::new(),
    };
    s.ws();
    let _ = s.value("");
    s.found
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    found: Vec<String>,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self, path: &str) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(path),
            b'[' => self.array(path),
            b'"' => self.string().map(|_| ()),
            _ => {
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return serde_json::from_slice(&self.b[start..self.i]).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }

    fn object(&mut self, path: &str) -> Option<()> {
        self.i += 1;
        let mut keys: Vec<String> = Vec::new();
        loop {
            self.ws();
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => {
                    self.i += 1;
                    continue;
                }
                b'"' => {}
                _ => return None,
            }
            let key = self.string()?;
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if keys.contains(&key) {
                self.found.push(child.clone());
            } else {
                keys.push(key);
            }
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            self.value(&child)?;
        }
    }

    fn array(&mut self, path: &str) -> Option<()> {
        self.i += 1;
        let mut index = 0usize;
        loop {
            self.ws();
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => {
                    self.i += 1;
                    index += 1;
                    continue;
                }
                _ => {}
            }
            self.value(&format!("{path}[{index}]"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::duplicate_fields;

    #[test]
    fn duplicate_keys_are_found_with_their_paths() {
        let body = br#"{"spec": {"size": 1, "items": [{"n": 1, "n": 2}], "size": 2}, "kind": "W"}"#;
        assert_eq!(duplicate_fields(body), vec!["spec.items[0].n", "spec.size"]);
    }

    #[test]
    fn escaped_keys_compare_by_their_decoded_text() {
        assert_eq!(duplicate_fields(br#"{"a": 1, "\u0061": 2}"#), vec!["a"]);
        assert!(duplicate_fields(br#"{"a": "}", "b": {"a": 1}}"#).is_empty());
    }
}
