//! `metav1.Condition` bookkeeping shared by both controllers.
//!
//! The rule every dashboard relies on: `lastTransitionTime` moves only when a condition's
//! `status` moves. Reason, message and observedGeneration may change without a transition.
//!
//! Must not: decide which conditions an object has; the controllers' decisions do.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `True`, `False` or `Unknown`, as Kubernetes spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    pub fn from_bool(value: bool) -> Status {
        if value {
            Status::True
        } else {
            Status::False
        }
    }
}

/// The desired state of one condition, without the transition time (which is derived).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: Status,
    pub reason: &'a str,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// Set `desired` in `conditions`, keeping `lastTransitionTime` unless the status changes.
/// Conditions stay sorted in the order they were first added.
pub fn set(conditions: &mut Vec<Condition>, desired: Desired<'_>, now: &Time) {
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            if existing.status != desired.status.as_str() {
                existing.last_transition_time = now.clone();
                existing.status = desired.status.as_str().to_string();
            }
            existing.reason = desired.reason.to_string();
            existing.message = desired.message;
            existing.observed_generation = desired.observed_generation;
        }
        None => conditions.push(Condition {
            type_: desired.type_.to_string(),
            status: desired.status.as_str().to_string(),
            reason: desired.reason.to_string(),
            message: desired.message,
            observed_generation: desired.observed_generation,
            last_transition_time: now.clone(),
        }),
    }
}

/// The condition of the given type, if present.
pub fn find<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type has status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready(status: Status, reason: &'static str) -> Desired<'static> {
        Desired {
            type_: "Ready",
            status,
            reason,
            message: format!("{reason} message"),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn a_new_condition_transitions_now() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(Status::True, "Validated"), &at(10));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].status, "True");
    }

    #[test]
    fn a_reason_change_without_a_status_change_keeps_the_transition_time() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(Status::False, "Timeout"), &at(10));
        set(
            &mut conditions,
            ready(Status::False, "InvalidAccessKeyId"),
            &at(20),
        );
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].reason, "InvalidAccessKeyId");
        assert_eq!(conditions[0].message, "InvalidAccessKeyId message");
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(Status::False, "Timeout"), &at(10));
        set(&mut conditions, ready(Status::True, "Validated"), &at(30));
        assert_eq!(conditions[0].last_transition_time, at(30));
        assert!(is_true(&conditions, "Ready"));
    }

    #[test]
    fn conditions_keep_their_first_insertion_order() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(Status::True, "Validated"), &at(1));
        let mut stalled = ready(Status::False, "Validated");
        stalled.type_ = "Stalled";
        set(&mut conditions, stalled, &at(1));
        set(&mut conditions, ready(Status::False, "Timeout"), &at(2));
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Stalled"]);
    }
}
