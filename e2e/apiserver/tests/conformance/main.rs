#![recursion_limit = "512"]
//! Conformance tests for the emulator, one behaviour each, named after §5
//! of `docs/apiserver-contract.md`, driven through kube-rs (and kubectl for
//! the (K) items, in `kubectl.rs`).

mod builtins;
mod common;
mod crud;
mod deletion;
mod discovery;
mod events;
mod hooks;
mod kubectl;
mod listing;
mod patching;
mod protobuf;
mod validation;
mod watching;
