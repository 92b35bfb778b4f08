//! The subcommands of the `castellan` binary, over the library's logic. Each submodule owns one
//! subcommand: its arguments, its output and its exit codes.
//!
//! Must not: hold logic the operator or another client needs; that belongs in the library.

#[cfg(feature = "demo")]
pub mod demo;
pub mod discover;
pub mod get;
pub mod put;
pub mod run;
pub mod transfer;
pub mod verify;
