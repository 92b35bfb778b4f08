//! Query-string parsing that tolerates kube's `?&a=b` and a bare trailing `?`.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Query {
    raw: String,
    map: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or("").to_string();
        let map = form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query { raw, map }
    }
    pub fn raw(&self) -> &str {
        &self.raw
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }
    /// `true`/`1` → true (Go `strconv.ParseBool` subset).
    pub fn flag(&self, k: &str) -> bool {
        matches!(
            self.get(k),
            Some("true" | "1" | "True" | "TRUE" | "t" | "T")
        )
    }
    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn tolerates_leading_ampersand_and_bare() {
        let q = Query::parse(Some("&watch=true&labelSelector=app%3Dmyapp"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("app=myapp"));
        let q = Query::parse(Some(""));
        assert!(q.get("watch").is_none());
        let q = Query::parse(None);
        assert!(!q.has("x"));
    }
}
