//! One file per group of verbs; each function is one `deployer` command.

pub mod db;
pub mod host;
pub mod infra;
pub mod instance;
pub mod reboot;
pub mod secrets;
pub mod session;
pub mod ship;
