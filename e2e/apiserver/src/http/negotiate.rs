//! `Accept` header negotiation: full JSON, `PartialObjectMetadata(List)` or `Table`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Full,
    PartialMeta,
    PartialMetaList,
    Table,
}

/// The first acceptable representation in the header, or `None` if nothing
/// offered is servable (the caller answers 406).
pub fn negotiate(accept: Option<&str>) -> Option<Repr> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Repr::Full);
    };
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut g = None;
        let mut v = None;
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(val.trim().to_string()),
                    "g" => g = Some(val.trim().to_string()),
                    "v" => v = Some(val.trim().to_string()),
                    _ => {}
                }
            }
        }
        if !(mime == "application/json" || mime == "*/*" || mime == "application/*") {
            continue;
        }
        match as_.as_deref() {
            None => return Some(Repr::Full),
            Some(kind) => {
                if g.as_deref() != Some("meta.k8s.io") || v.as_deref() != Some("v1") {
                    continue;
                }
                match kind {
                    "Table" => return Some(Repr::Table),
                    "PartialObjectMetadata" => return Some(Repr::PartialMeta),
                    "PartialObjectMetadataList" => return Some(Repr::PartialMetaList),
                    _ => continue,
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn kubectl_and_kube_headers() {
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")),
            Some(Repr::Table)
        );
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Some(Repr::PartialMetaList)
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")),
            Some(Repr::Full)
        );
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf")), None);
        assert_eq!(negotiate(None), Some(Repr::Full));
    }
}
