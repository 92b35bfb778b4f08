//! Castellan: keeps content-addressed artifacts downloadable when their object-storage
//! backends change credentials, break or get replaced.

pub mod api;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod context;
#[cfg(feature = "demo")]
pub mod demo;
pub mod digest;
pub mod mapping;
pub mod metrics;
pub mod operator;
pub mod resolve;
pub mod storage;
pub mod telemetry;
pub mod transfer;
