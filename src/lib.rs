//! Castellan: keeps content-addressed artifacts downloadable when their object-storage
//! backends change credentials, break or get replaced.

pub mod api;
pub mod cli;
pub mod digest;
pub mod storage;
