//! The clock, injected so that decisions are pure and tests control time.
//!
//! Owns: the notion of "now". Must not: be read by pure decision code (it receives the time as a
//! value).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// The current time as a Kubernetes `metav1.Time`, truncated to seconds as the API stores it.
    fn now_time(&self) -> Time {
        let now = self.now();
        Time(Timestamp::from_second(now.as_second()).expect("a current time is in range"))
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
