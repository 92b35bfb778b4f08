//! String `format` checks, for the formats the CRD validator knows.
//!
//! The apiextensions validator only keeps formats from its supported list (`bsonobjectid`,
//! `uri`, `email`, `hostname`, `ipv4`, `ipv6`, `cidr`, `mac`, `uuid`, `uuid3`, `uuid4`, `uuid5`,
//! `isbn*`, `creditcard`, `ssn`, `hexcolor`, `rgbcolor`, `byte`, `password`, `date`, `duration`,
//! `datetime`/`date-time`); every other format (`int32`, `int64`, `float`, `double`, ...) is
//! ignored, and number formats never apply to strings anyway.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Whether `s` is valid for `format`; unknown or unchecked formats accept everything.
pub(crate) fn valid(format: &str, s: &str) -> bool {
    static DATE_TIME: OnceLock<Regex> = OnceLock::new();
    static DATE: OnceLock<Regex> = OnceLock::new();
    static UUID: OnceLock<Regex> = OnceLock::new();
    static MAC: OnceLock<Regex> = OnceLock::new();
    static HOSTNAME: OnceLock<Regex> = OnceLock::new();
    static BYTE: OnceLock<Regex> = OnceLock::new();
    static DURATION: OnceLock<Regex> = OnceLock::new();
    static BSON: OnceLock<Regex> = OnceLock::new();
    static HEXCOLOR: OnceLock<Regex> = OnceLock::new();
    match format {
        "date-time" | "datetime" => re(
            &DATE_TIME,
            r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$",
        )
        .is_match(s),
        "date" => re(&DATE, r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$").is_match(s),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => re(
            &UUID,
            r"^(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
        )
        .is_match(s),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s
            .split_once('/')
            .and_then(|(ip, bits)| {
                let ip: IpAddr = ip.parse().ok()?;
                let bits: u8 = bits.parse().ok()?;
                Some(bits <= if ip.is_ipv4() { 32 } else { 128 })
            })
            .unwrap_or(false),
        "mac" => re(
            &MAC,
            r"^(?i)([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$|^([0-9a-f]{2}[:-]){7}[0-9a-f]{2}$|^([0-9a-f]{4}\.){2}[0-9a-f]{4}$",
        )
        .is_match(s),
        "hostname" => {
            s.len() <= 255
                && re(
                    &HOSTNAME,
                    r"^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$",
                )
                .is_match(s)
        }
        "byte" => re(
            &BYTE,
            r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        )
        .is_match(s),
        "duration" => re(
            &DURATION,
            r"^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)(\s*(\d+(\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h|d|w))*$|^[-+]?0$",
        )
        .is_match(s),
        // url.ParseRequestURI: an absolute URI or an absolute path.
        "uri" => {
            static URI: OnceLock<Regex> = OnceLock::new();
            !s.contains(char::is_whitespace)
                && (s.starts_with('/') || re(&URI, r"^[A-Za-z][A-Za-z0-9+.-]*:.+").is_match(s))
        }
        "email" => s
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains(' ')),
        "bsonobjectid" => re(&BSON, r"^(?i)[0-9a-f]{24}$").is_match(s),
        "hexcolor" => re(&HEXCOLOR, r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").is_match(s),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn known_formats_reject_malformed_strings_and_unknown_formats_accept_all() {
        let cases = [
            ("date-time", "2024-01-02T03:04:05Z", true),
            ("date-time", "2024-01-02T03:04:05.123+02:00", true),
            ("date-time", "yesterday", false),
            ("date", "2024-01-02", true),
            ("date", "2024-13-02", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "not base64!", false),
            ("uuid", "550e8400-e29b-41d4-a716-446655440000", true),
            ("uuid", "550e8400", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0.256", false),
            ("ipv6", "::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("duration", "1h30m", true),
            ("duration", "soon", false),
            ("uri", "https://example.com/x", true),
            ("uri", "123", false),
            ("email", "a@b.c", true),
            ("email", "nope", false),
            ("int32", "anything", true),
            ("my-own-format", "anything", true),
        ];
        for (format, s, want) in cases {
            assert_eq!(valid(format, s), want, "{format} {s}");
        }
    }
}
