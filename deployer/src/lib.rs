//! deployer library: secrets, terraform, remote shipping, verification.
