//! The schedule of a scrub pass, as pure functions: which copies a backend holds for its
//! namespace's mappings, in which order they are read, how far apart, and which are skipped.
//!
//! Owns: the pass order (never verified first, then the longest unverified), the even spread
//! over the interval, the skip rule and the lag figure. Must not: do I/O or read the clock.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::condition;
use crate::api::reasons::mapping_condition;
use crate::api::{ArtifactMapping, StorageBackend};

/// Share of the interval a pass is spread over: the rest absorbs read time, so that every copy
/// is read again within one interval.
pub const SPREAD: f64 = 0.9;

/// One copy a backend holds for a mapping of its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The mapping's name (same namespace as the backend).
    pub mapping: String,
    pub key: String,
    /// When the copy last verified (for a recorded bad copy: when it was found bad).
    pub last_verified: Option<Timestamp>,
    /// When the mapping was created (orders copies that never verified).
    pub created: Option<Timestamp>,
    /// The copy is recorded bad: it is read to see whether it verifies again.
    pub bad: bool,
}

/// The copy `mapping` has on `backend`, if any: the one it serves from, or a recorded bad one.
pub fn copy_on(backend: &str, mapping: &ArtifactMapping) -> Option<Copy> {
    let status = mapping.status.as_ref()?;
    let created = mapping.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let serving = status.backend.as_deref() == Some(backend)
        && condition::is_true(&status.conditions, mapping_condition::READY);
    if let (true, Some(key)) = (serving, status.key.as_ref()) {
        return Some(Copy {
            mapping: mapping.name_any(),
            key: key.clone(),
            last_verified: status.last_verified_time.as_ref().map(|t| t.0),
            created,
            bad: false,
        });
    }
    let bad = status.bad_replicas.iter().find(|b| b.backend == backend)?;
    Some(Copy {
        mapping: mapping.name_any(),
        key: bad.key.clone(),
        last_verified: Some(bad.detected_time.0),
        created,
        bad: true,
    })
}

/// The copies `backend` holds for the mappings of its namespace.
pub fn copies_on<'a>(
    backend: &StorageBackend,
    mappings: impl IntoIterator<Item = &'a ArtifactMapping>,
) -> Vec<Copy> {
    let (name, namespace) = (backend.name_any(), backend.namespace());
    mappings
        .into_iter()
        .filter(|m| m.namespace() == namespace)
        .filter_map(|m| copy_on(&name, m))
        .collect()
}

/// Never verified first (oldest mapping first), then the longest unverified; ties by name.
pub fn order(copies: &mut [Copy]) {
    copies.sort_by(|a, b| {
        let key = |c: &Copy| (c.last_verified.is_some(), c.last_verified, c.created);
        key(a).cmp(&key(b)).then_with(|| a.mapping.cmp(&b.mapping))
    });
}

/// Time between the starts of two reads in a pass of `count` copies.
pub fn spacing(interval: Duration, count: usize) -> Duration {
    let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    interval.mul_f64(SPREAD) / count
}

/// When, after the pass started, the `index`-th read starts.
pub fn offset(spacing: Duration, index: usize) -> Duration {
    spacing.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX))
}

/// Whether a copy still needs reading in a pass that started at `pass_start`: one verified
/// since (by a reassignment, a repair, or before a restart in this pass) is not read again.
pub fn worth_reading(copy: &Copy, pass_start: Timestamp) -> bool {
    copy.bad || copy.last_verified.is_none_or(|t| t < pass_start)
}

/// How long the least recently verified served copy has gone unverified (a never-verified one:
/// since its mapping was created); zero with no served copy.
pub fn lag(copies: &[Copy], now: Timestamp) -> Duration {
    copies
        .iter()
        .filter(|c| !c.bad)
        .filter_map(|c| c.last_verified.or(c.created))
        .min()
        .map(|oldest| Duration::try_from(now.duration_since(oldest)).unwrap_or_default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn copy(name: &str, verified: Option<i64>, created: i64) -> Copy {
        Copy {
            mapping: name.into(),
            key: format!("k/{name}"),
            last_verified: verified.map(at),
            created: Some(at(created)),
            bad: false,
        }
    }

    #[test]
    fn never_verified_copies_go_first_then_the_longest_unverified() {
        let mut copies = vec![
            copy("recent", Some(100), 0),
            copy("new-late", None, 50),
            copy("old", Some(10), 0),
            copy("new-early", None, 5),
        ];
        order(&mut copies);
        let names: Vec<&str> = copies.iter().map(|c| c.mapping.as_str()).collect();
        assert_eq!(names, ["new-early", "new-late", "old", "recent"]);
    }

    #[test]
    fn a_pass_spreads_its_reads_over_nine_tenths_of_the_interval() {
        let s = spacing(Duration::from_secs(1000), 10);
        assert_eq!(s, Duration::from_secs(90));
        assert_eq!(offset(s, 0), Duration::ZERO);
        assert_eq!(offset(s, 9), Duration::from_secs(810));
    }

    #[test]
    fn an_empty_pass_and_a_huge_index_never_overflow() {
        assert_eq!(spacing(Duration::from_secs(10), 0), Duration::from_secs(9));
        assert_eq!(offset(Duration::MAX, usize::MAX), Duration::MAX);
    }

    #[test]
    fn a_copy_verified_since_the_pass_started_is_not_read_again_but_a_bad_one_is() {
        let start = at(100);
        assert!(worth_reading(&copy("never", None, 0), start));
        assert!(worth_reading(&copy("before", Some(99), 0), start));
        assert!(!worth_reading(&copy("since", Some(100), 0), start));
        let mut bad = copy("bad", Some(150), 0);
        bad.bad = true;
        assert!(worth_reading(&bad, start));
    }

    #[test]
    fn the_lag_is_the_age_of_the_oldest_unverified_served_copy() {
        let copies = [copy("a", Some(40), 0), copy("b", None, 30)];
        assert_eq!(lag(&copies, at(100)), Duration::from_secs(70));
        assert_eq!(lag(&[], at(100)), Duration::ZERO);
    }
}
