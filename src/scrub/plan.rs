//! The schedule of scrubbing, as pure functions: which copies a backend holds for its
//! namespace's mappings, which one the next read takes, and how far apart reads are.
//!
//! Reads come at a steady pace, one per [`spacing`] (nine tenths of the interval shared by the
//! copies), each taking the least recently verified copy ([`next`]) if it is due: never
//! verified, recorded bad, or verified at least half an interval ago. Every copy is thus read
//! about every nine tenths of the interval, whatever verified it out of turn (a reassignment
//! does: that copy simply goes to the back of the line), and a mass reassignment costs no
//! scrub reads at all until its copies come due.
//!
//! Owns: the order, the due rule, the spacing and the lag figure. Must not: do I/O or read the
//! clock.

use std::collections::HashMap;
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

fn turn(c: &Copy) -> (bool, Option<Timestamp>, Option<Timestamp>, &str) {
    (
        c.last_verified.is_some(),
        c.last_verified,
        c.created,
        c.mapping.as_str(),
    )
}

/// Never verified first (oldest mapping first), then the longest unverified; ties by name.
pub fn order(copies: &mut [Copy]) {
    copies.sort_by(|a, b| turn(a).cmp(&turn(b)));
}

/// Whether a copy is read when its turn comes: never verified, recorded bad, or verified at
/// least half an interval ago.
pub fn due(copy: &Copy, now: Timestamp, interval: Duration) -> bool {
    let Some(at) = copy.last_verified else {
        return true;
    };
    let age = Duration::try_from(now.duration_since(at)).unwrap_or_default();
    copy.bad || age >= interval / 2
}

/// The copy the next read takes: the first in [`order`], if it is [`due`].
pub fn next(copies: &[Copy], now: Timestamp, interval: Duration) -> Option<&Copy> {
    copies
        .iter()
        .min_by(|a, b| turn(a).cmp(&turn(b)))
        .filter(|c| due(c, now, interval))
}

/// Takes this process' own reads into account: a copy read at `read_at[mapping]` waits its
/// turn like one verified then, even before (or without, for a copy that is still bad) a status
/// write saying so. Forgets reads of copies no longer held.
pub fn with_reads(copies: &mut [Copy], read_at: &mut HashMap<String, Timestamp>) {
    read_at.retain(|mapping, _| copies.iter().any(|c| &c.mapping == mapping));
    for copy in copies {
        if let Some(at) = read_at.get(&copy.mapping) {
            copy.last_verified = copy.last_verified.max(Some(*at));
        }
    }
}

/// Time between two reads on a backend holding `count` copies.
pub fn spacing(interval: Duration, count: usize) -> Duration {
    let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    interval.mul_f64(SPREAD) / count
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
    fn reads_are_spread_over_nine_tenths_of_the_interval_and_never_overflow() {
        assert_eq!(
            spacing(Duration::from_secs(1000), 10),
            Duration::from_secs(90)
        );
        assert_eq!(spacing(Duration::from_secs(10), 0), Duration::from_secs(9));
        assert_eq!(spacing(Duration::MAX, 1), Duration::MAX.mul_f64(SPREAD));
    }

    #[test]
    fn a_copy_is_due_never_verified_or_bad_or_after_half_an_interval() {
        let interval = Duration::from_secs(100);
        let now = at(1000);
        assert!(due(&copy("never", None, 0), now, interval));
        assert!(due(&copy("old", Some(950), 0), now, interval));
        assert!(!due(&copy("recent", Some(951), 0), now, interval));
        let mut bad = copy("bad", Some(999), 0);
        bad.bad = true;
        assert!(due(&bad, now, interval));
    }

    #[test]
    fn the_next_read_takes_the_least_recently_verified_copy_if_it_is_due() {
        let interval = Duration::from_secs(100);
        let copies = [copy("b", Some(990), 0), copy("a", Some(980), 0)];
        assert_eq!(
            next(&copies, at(1000), interval),
            None,
            "all verified recently"
        );
        let got = next(&copies, at(1030), interval).map(|c| c.mapping.as_str());
        assert_eq!(got, Some("a"));
        let with_new = [copies[0].clone(), copies[1].clone(), copy("n", None, 5)];
        let got = next(&with_new, at(1000), interval).map(|c| c.mapping.as_str());
        assert_eq!(got, Some("n"), "a never-verified copy goes first");
    }

    #[test]
    fn a_bad_copy_read_without_change_goes_to_the_back_of_the_line() {
        let interval = Duration::from_secs(100);
        let bad = |name: &str, detected| Copy {
            bad: true,
            ..copy(name, Some(detected), 0)
        };
        let mut copies = vec![bad("first-found", 10), bad("later-found", 20)];
        let mut read_at = HashMap::from([("first-found".to_owned(), at(30))]);
        read_at.insert("gone".to_owned(), at(30));
        with_reads(&mut copies, &mut read_at);
        let got = next(&copies, at(40), interval).map(|c| c.mapping.as_str());
        assert_eq!(got, Some("later-found"));
        assert!(
            !read_at.contains_key("gone"),
            "reads of copies no longer held are forgotten"
        );
    }

    #[test]
    fn the_lag_is_the_age_of_the_oldest_unverified_served_copy() {
        let copies = [copy("a", Some(40), 0), copy("b", None, 30)];
        assert_eq!(lag(&copies, at(100)), Duration::from_secs(70));
        assert_eq!(lag(&[], at(100)), Duration::ZERO);
    }
}
