//! Command-line subcommands whose logic lives in the library (the binary only wires clap).
//! Each submodule owns one subcommand: its arguments, its output and its exit codes.

#[cfg(feature = "demo")]
pub mod demo;
pub mod get;
pub mod put;
pub mod run;
pub mod transfer;
pub mod verify;
