//! One S3 contract, run against every server fixture: Castellan's `ObjectStore` operations, its
//! verified reads, how credential failures are classified, and the streaming-checksum trap, on
//! the in-process s3s server, moto, Ceph RGW and Garage. See `README.md` next to this file for
//! which environment variable selects which fixture.
//!
//! - `cases.rs`: the server-agnostic cases, generic over [`fixture::Fixture`];
//! - `fixture.rs`: the trait, the documented per-server answers, shared helpers;
//! - `fixtures/*.rs`: one module per server: its `Fixture`, the contract instantiated for it
//!   (`fixtures::<name>::contract::<case>`), and the cases only that server can run (fault
//!   injection, user suspension, wire-level error codes).

mod cases;
mod fixture;

/// Instantiates every contract case (`cases::contract_cases!`) as a `#[tokio::test]` against
/// `$fixture`. Cases a server cannot pass are listed with the reason under `known_failures` and
/// become `#[ignore]`d tests of that name (run them with `--ignored`).
macro_rules! contract_tests {
    ($fixture:ty) => {
        contract_tests!($fixture; known_failures {});
    };
    ($fixture:ty; known_failures { $($failing:ident: $why:literal),* $(,)? }) => {
        contract_tests!(@define ($) $fixture; $($failing: $why),*);
    };
    (@define ($d:tt) $fixture:ty; $($failing:ident: $why:literal),*) => {
        // A known failure must name a case (a misspelt name would otherwise be ignored).
        $(const _: () = {
            let _ = crate::cases::$failing::<$fixture>;
        };)*
        macro_rules! contract_test {
            $(
                ($failing) => {
                    #[tokio::test]
                    #[ignore = $why]
                    async fn $failing() {
                        if let Some(f) =
                            <$fixture as crate::fixture::Fixture>::start(stringify!($failing)).await
                        {
                            crate::cases::$failing(&f).await;
                        }
                    }
                };
            )*
            ($d case:ident) => {
                #[tokio::test]
                async fn $d case() {
                    if let Some(f) =
                        <$fixture as crate::fixture::Fixture>::start(stringify!($d case)).await
                    {
                        crate::cases::$d case(&f).await;
                    }
                }
            };
        }
        macro_rules! contract_test_all {
            (() $d($d case:ident),* $d(,)?) => { $d(contract_test!($d case);)* };
        }
        crate::cases::contract_cases!(contract_test_all!());
    };
}

mod fixtures;
