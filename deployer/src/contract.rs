//! The names the deployer and the infrastructure (terraform/, compose/) agree on.
