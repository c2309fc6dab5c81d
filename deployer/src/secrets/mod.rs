//! SOPS dotenv + age: decrypt and encrypt credentials files in-process.
