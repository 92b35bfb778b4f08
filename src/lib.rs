//! Castellan: keeps content-addressed artifacts downloadable when their object-storage
//! backends change credentials, break or get replaced.

pub mod api;
pub mod backend;
pub mod clock;
pub mod cluster;
pub mod digest;
pub mod discovery;
pub mod fence;
pub mod mapping;
pub mod metrics;
pub mod operator;
pub mod placement;
pub mod resolve;
pub mod scrub;
pub mod storage;
pub mod telemetry;
pub mod transfer;
pub mod verifier;
