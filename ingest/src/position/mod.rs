//! Position decoding and validation: turns one MQTT publish from a tracker into validated
//! `Position`s and `Reject`s (see `docs/payloads.md` for the formats and rules), and encodes
//! that outcome compactly for the WAL.
//!
//! ```text
//! decode(topic, payload, identity, received_at, cfg)
//!   topic ──▶ format + device id (identity check)
//!   payload ──▶ size, UTF-8 ──▶ object | array ──▶ per point: format parser ──▶ validate
//!   ──▶ Decoded::Accepted { positions, rejects } | Decoded::Ignored { reason }
//! encode_record(positions, rejects) ──▶ Bytes (WAL)  ──▶ decode_record ──▶ same values
//! ```

mod batch;
mod config;
mod decode;
mod fields;
mod model;
mod owntracks;
mod point;
mod project;
mod reason;
mod record;
mod teltonika;
mod time;
mod topic;
mod validate;

pub use config::ValidationConfig;
pub use decode::decode;
pub use model::{Decoded, Position, Reject};
pub use reason::RejectReason;
pub use record::{decode_record, encode_record, RecordError, RECORD_VERSION};
pub use topic::{is_valid_device_id, is_valid_owntracks_id, MAX_DEVICE_ID_LEN};
