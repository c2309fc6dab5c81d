//! deployer: one command from a fresh checkout to a verified AccoReboot edge environment.
//!
//! Data flows one way through these modules:
//!
//! - [`cli`] parses `deployer <command> <env>`; [`app`] dispatches to the commands.
//! - [`env`] resolves the checkout and the environment (terraform/environments/<env>).
//! - [`secrets`] decrypts the SOPS/age credentials ([`decrypt`] is the bridge), and
//!   [`credentials`] decides which names reach which child process.
//! - [`terraform`] runs the real `terraform` binary and parses its outputs per [`contract`].
//! - [`remote`] talks to the instance with the system OpenSSH: pinned host keys, wait loops,
//!   uploads, remote commands; [`bundle`] renders the compose bundle for an env.
//! - [`openstack`] drives the instance's power state (Nova); [`verify`] checks a deployed env
//!   from outside, publishing with [`mqtt_probe`] on the MQTT ports [`exposure`] says are
//!   open; `db stop|start` pauses preprod's database; `reboot-test` publishes
//!   continuously with [`mqtt_probe`]'s stream through a reboot, and [`reboot_test`] judges
//!   that no acknowledged point was lost.
//! - [`process`], [`progress`] and [`redact`] are the plumbing: run a tool, show the step
//!   and its elapsed time, keep secrets out of every line printed.

pub mod app;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod contract;
pub mod credentials;
pub mod decrypt;
pub mod dump_store;
pub mod env;
pub mod exposure;
pub mod mqtt_probe;
pub mod openstack;
pub mod process;
pub mod progress;
pub mod reboot_test;
pub mod redact;
pub mod remote;
pub mod remote_sql;
pub mod secrets;
pub mod terraform;
pub mod verify;
