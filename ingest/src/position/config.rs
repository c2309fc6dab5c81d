//! The limits and switches of payload validation (`ValidationConfig`), with safe defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Validation limits. Every field has a default; a config file may set any subset.
///
/// Durations are written in humantime form in config files (`"5m"`, `"90days"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Accept (0, 0) as a real fix. Default false: trackers send zeros when they have no fix.
    pub allow_null_island: bool,
    /// Highest accepted speed in m/s (default 350, a fast aircraft).
    pub max_speed: f64,
    /// Highest accepted accuracy radius in metres; `None` (default) accepts any.
    pub max_accuracy: Option<f64>,
    /// How far a fix may be ahead of the reception time (default 5 min; device clock skew).
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// How far a fix may be behind the reception time (default 90 days; offline buffers).
    #[serde(with = "humantime_serde")]
    pub max_past: Duration,
    /// Largest accepted payload in bytes (default 256 KiB). Also caps stored reject payloads.
    pub max_payload_bytes: usize,
    /// Most points in one array message (default 10,000).
    pub max_points: usize,
    /// Largest size in bytes of one point's attributes as JSON text (default 4 KiB).
    pub max_attributes_bytes: usize,
    /// Accept Teltonika Codec JSON on `{imei}/data` (default true).
    pub teltonika: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            allow_null_island: false,
            max_speed: 350.0,
            max_accuracy: None,
            max_future: Duration::from_secs(5 * 60),
            max_past: Duration::from_secs(90 * 24 * 3600),
            max_payload_bytes: 256 * 1024,
            max_points: 10_000,
            max_attributes_bytes: 4 * 1024,
            teltonika: true,
        }
    }
}
