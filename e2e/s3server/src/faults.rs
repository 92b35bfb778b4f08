//! Fault injection for [`crate::S3Server`]: what the next requests should suffer.
//!
//! Faults apply in the server's request path, before (errors, latency) or around (cut-off
//! bodies) the real s3s service; they are not simulated in the client.

use std::sync::Mutex;
use std::time::Duration;

/// An error answer the server can give instead of serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 `InternalError`.
    InternalError,
    /// 503 `SlowDown` (S3's throttling answer).
    SlowDown,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
}

impl Fault {
    pub(crate) fn status(self) -> u16 {
        match self {
            Fault::InternalError => 500,
            Fault::SlowDown | Fault::ServiceUnavailable => 503,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Fault::InternalError => "InternalError",
            Fault::SlowDown => "SlowDown",
            Fault::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Fault::InternalError => "We encountered an internal error. Please try again.",
            Fault::SlowDown => "Please reduce your request rate.",
            Fault::ServiceUnavailable => "Service is unable to handle request.",
        }
    }
}

#[derive(Debug, Default)]
struct State {
    next: Option<(u32, Fault)>,
    fraction: Option<(f64, Fault)>,
    cut_get_after: Option<u64>,
    latency: Duration,
    requests: u64,
}

/// The fault switchboard of one server. All settings hold until changed or [`Faults::clear`]ed.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub fail: Option<Fault>,
    pub cut_get_after: Option<u64>,
}

impl Faults {
    /// Answers the next `n` requests with `fault`.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.state.lock().unwrap().next = Some((n, fault));
    }

    /// Answers each request with `fault` with probability `fraction` (0.0–1.0).
    pub fn fail_fraction(&self, fraction: f64, fault: Fault) {
        self.state.lock().unwrap().fraction = Some((fraction.clamp(0.0, 1.0), fault));
    }

    /// Cuts every object GET body off after `bytes` bytes (the connection is then dropped,
    /// the announced Content-Length unchanged). `None` stops cutting.
    pub fn cut_get_bodies_after(&self, bytes: Option<u64>) {
        self.state.lock().unwrap().cut_get_after = bytes;
    }

    /// Delays every request by `latency` before it is served.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        let requests = s.requests;
        *s = State {
            requests,
            ..State::default()
        };
    }

    /// Requests seen so far (served or failed).
    pub fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    pub(crate) fn decide(&self, is_object_get: bool) -> Decision {
        let mut s = self.state.lock().unwrap();
        s.requests += 1;
        let mut fail = None;
        if let Some((n, fault)) = s.next {
            fail = Some(fault);
            s.next = if n > 1 { Some((n - 1, fault)) } else { None };
        }
        if fail.is_none() {
            if let Some((p, fault)) = s.fraction {
                if rand::random::<f64>() < p {
                    fail = Some(fault);
                }
            }
        }
        Decision {
            latency: s.latency,
            fail,
            cut_get_after: if is_object_get { s.cut_get_after } else { None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down_and_then_serves() {
        let f = Faults::default();
        f.fail_next(2, Fault::SlowDown);
        assert_eq!(f.decide(false).fail, Some(Fault::SlowDown));
        assert_eq!(f.decide(false).fail, Some(Fault::SlowDown));
        assert_eq!(f.decide(false).fail, None);
        assert_eq!(f.requests(), 3);
    }

    #[test]
    fn a_fraction_of_one_fails_everything_and_zero_nothing() {
        let f = Faults::default();
        f.fail_fraction(1.0, Fault::InternalError);
        assert!((0..20).all(|_| f.decide(false).fail == Some(Fault::InternalError)));
        f.fail_fraction(0.0, Fault::InternalError);
        assert!((0..20).all(|_| f.decide(false).fail.is_none()));
    }

    #[test]
    fn cutting_applies_to_object_gets_only() {
        let f = Faults::default();
        f.cut_get_bodies_after(Some(10));
        assert_eq!(f.decide(true).cut_get_after, Some(10));
        assert_eq!(f.decide(false).cut_get_after, None);
        f.clear();
        assert_eq!(f.decide(true).cut_get_after, None);
    }
}
