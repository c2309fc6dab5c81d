//! The write-ahead log: CRC-checked records in segment files, group-committed fsync.
