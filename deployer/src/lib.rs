//! deployer library: secrets (SOPS/age), the infrastructure contract, terraform, remote
//! shipping over SSH, verification.

pub mod contract;
pub mod secrets;
