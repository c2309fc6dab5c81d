//! Position decoding and validation (tracker payload formats). Owned by the position work.
