//! Property tests: arbitrary spec values, keys, digests, S3 answers and error texts thrown at the
//! pure code a tenant's input (or a tenant's server) reaches (durations, the validation
//! schedule, the key layout, digests, the classification of answers, redaction). Each property holds for every input, not only for the table tests' examples.
//!
//! proptest rather than cargo-fuzz: it runs on the stable toolchain inside `cargo test`, with a
//! bounded number of cases per property (`PROPTEST_CASES`, 256 by default) and shrinking to a
//! minimal failing input, so CI runs it on every change at a fixed cost.

use std::time::Duration;

use castellan::backend::duration;
use castellan::backend::schedule::{effective_interval, requeue_after, MAX_INTERVAL};
use castellan::digest::{Algorithm, Digest};
use castellan::storage::error::{classify, redact, Facts, Target};
use castellan::storage::layout;
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

/// The longest wait the operator ever schedules (a day).
const MAX_REQUEUE: Duration = Duration::from_secs(24 * 3600);

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_000_000_000).prop_map(|s| Timestamp::from_second(s).unwrap())
}

/// A duration as the CRD's pattern admits it: one to four parts of up to six digits, an
/// optional fraction, a unit.
fn schema_duration() -> impl Strategy<Value = String> {
    let part = (
        1u32..=999_999,
        proptest::option::of(0u32..=999_999_999),
        prop::sample::select(vec!["ns", "us", "ms", "s", "m", "h"]),
    )
        .prop_map(|(n, frac, unit)| match frac {
            Some(f) => format!("{n}.{f}{unit}"),
            None => format!("{n}{unit}"),
        });
    prop::collection::vec(part, 1..=4).prop_map(|parts| parts.concat())
}

fn digest() -> impl Strategy<Value = Digest> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(long, bytes)| {
        let algorithm = if long {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        };
        Digest::of_bytes(algorithm, &bytes)
    })
}

/// A credential as a server or the SDK might echo it: an access key id, a secret, a token.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/]{16,48}"
}

/// The forms a credential takes in an error text; `{}` is the secret.
const FORMS: &[&str] = &[
    "https://bucket.example.com/key?X-Amz-Signature={}",
    "https://bucket.example.com/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}/20261203/us-east-1/s3/aws4_request",
    "X-Amz-Security-Token={}",
    "x-amz-security-token={}&x-amz-date=20261203T000000Z",
    "X-Amz-Security-Token: {}",
    "x-amz-security-token:{}",
    "X-AMZ-SECURITY-TOKEN:\t{}",
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={}",
    "Authorization: {}",
    "authorization:{}",
    "AWSAccessKeyId={}&Expires=1",
    "X-Amz-Signature: {}",
];

fn filler() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z]{1,12}", 0..40)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", "\t", "\n", "\r\n"])
}

proptest! {
    #[test]
    fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,40}") {
        let _ = duration::parse(&text);
    }

    #[test]
    fn every_duration_the_schema_admits_parses_without_overflow(text in schema_duration()) {
        prop_assert!(duration::parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn the_effective_interval_is_off_or_within_the_floor_and_a_year(
        secs in any::<u64>(), nanos in 0u32..1_000_000_000, floor_secs in any::<u64>()
    ) {
        let spec = Duration::new(secs, nanos);
        let floor = Duration::from_secs(floor_secs);
        let got = effective_interval(spec, floor);
        if spec.is_zero() {
            prop_assert_eq!(got, Duration::ZERO);
        } else {
            prop_assert!(got <= MAX_INTERVAL);
            prop_assert!(got >= floor.min(MAX_INTERVAL));
        }
    }

    #[test]
    fn the_next_reconcile_is_between_a_second_and_a_day_whatever_the_inputs(
        secs in any::<u64>(),
        nanos in 0u32..1_000_000_000,
        last in proptest::option::of(timestamp()),
        now in timestamp(),
        jitter in any::<f64>(),
    ) {
        let interval = Duration::new(secs, nanos);
        match requeue_after(interval, last, now, jitter) {
            None => prop_assert!(interval.is_zero()),
            Some(wait) => {
                prop_assert!(!interval.is_zero());
                prop_assert!(wait >= Duration::from_secs(1) && wait <= MAX_REQUEUE, "{wait:?}");
            }
        }
    }

    #[test]
    fn a_layout_key_maps_back_to_its_digest(prefix in "([a-z0-9-]{1,12}(/[a-z0-9-]{1,12}){0,3})?", d in digest()) {
        prop_assume!(layout::validate_prefix(&prefix).is_ok());
        let key = layout::key_for(&prefix, &d);
        prop_assert_eq!(layout::digest_for(&prefix, &key), Some(d));
    }

    #[test]
    fn any_key_under_any_prefix_maps_to_a_digest_or_nothing(prefix in "\\PC{0,20}", key in "\\PC{0,200}") {
        let _ = layout::digest_for(&prefix, &key);
        let _ = layout::validate_prefix(&prefix);
    }

    #[test]
    fn a_digest_prints_and_parses_back(d in digest()) {
        prop_assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d));
    }

    #[test]
    fn any_text_is_a_digest_or_an_error(text in "\\PC{0,140}") {
        let _ = text.parse::<Digest>();
    }

    #[test]
    fn no_credential_survives_redaction_in_any_form_case_or_position(
        secret in secret(),
        forms in prop::collection::vec(prop::sample::select(FORMS.to_vec()), 1..4),
        before in filler(),
        after in filler(),
        sep in separator(),
    ) {
        let mut words = before;
        words.extend(forms.iter().map(|f| f.replace("{}", &secret)));
        words.extend(after);
        let text = words.join(sep);
        // Without being told the secret: the forms alone must give it away.
        let out = redact(&text, &[]);
        prop_assert!(!out.contains(&secret[..8]), "{out}");
    }

    #[test]
    fn a_known_secret_is_scrubbed_before_the_text_is_cut(
        secret in secret(),
        before in filler(),
        after in filler(),
    ) {
        // The bare secret, anywhere, also across the length limit.
        let text = format!("{} {secret} {}", before.join(" "), after.join(" "));
        let out = redact(&text, &[&secret]);
        prop_assert!(!out.contains(&secret[..8]), "{out}");
    }

    #[test]
    fn any_answer_of_a_server_is_classified_and_a_bare_5xx_is_never_terminal(
        status in proptest::option::of(100u16..600),
        code in proptest::option::of(prop_oneof![
            prop::sample::select(vec![
                "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
                "NoSuchKey", "SlowDown", "InternalError", "ExpiredToken", "UserSuspended",
            ]).prop_map(str::to_owned),
            "\\PC{0,30}",
        ]),
        message in proptest::option::of("\\PC{0,200}"),
        bucket in any::<bool>(),
    ) {
        let facts = Facts {
            status,
            code: code.as_deref(),
            message: message.as_deref(),
            transport: None,
            target: if bucket { Target::Bucket } else { Target::Object },
        };
        let kind = classify(&facts);
        if status.is_some_and(|s| s >= 500) && code.is_none() {
            prop_assert!(!kind.is_terminal(), "{status:?} became {kind:?}");
        }
    }
}
