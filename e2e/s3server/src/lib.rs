//! Real S3 servers for Castellan's tests, demo and benchmarks, on loopback.
//!
//! - [`S3Server`]: an in-process s3s + s3s-fs server speaking S3 with SigV4 on `127.0.0.1:0`,
//!   with a [`KeyRing`] of access keys that can be added and revoked while it runs, a
//!   [`Faults`] switchboard (5xx answers, throttling, cut-off bodies, latency), and stop/restart
//!   (a stopped server refuses connections).
//! - [`MotoServer`]: a `moto_server` child process with IAM users, keys and buckets, auth
//!   switched on, and key revocation through a signed IAM `DeleteAccessKey`.
//!
//! Nothing here is mocked: clients talk the real protocol over TCP.

mod faults;
mod keys;
mod moto;
mod server;

pub use faults::{Fault, Faults};
pub use keys::KeyRing;
pub use moto::{MotoError, MotoServer, MotoUser};
pub use server::{S3Server, ServerOptions};
