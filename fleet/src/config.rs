//! What a fleet run looks like: broker address, how many trackers, how fast they report,
//! how they log in, and the validation that turns a bad setting into a clear error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Largest per-device rate: a position is identified by (device_id, time in ms), so a device
/// cannot report more than once per millisecond without its timestamps drifting ahead of
/// the wall clock.
pub const MAX_RATE_PER_DEVICE: f64 = 1000.0;

/// Largest number of points in one MQTT message (keeps a message well under broker limits).
pub const MAX_POINTS_PER_MESSAGE: usize = 1000;

/// How a simulated tracker logs in to the broker.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No username or password.
    #[default]
    Anonymous,
    /// Username = the device id, the same password for every device.
    SharedPassword(String),
    /// A function from the device id to (username, password).
    #[allow(clippy::type_complexity)]
    PerDevice(Arc<dyn Fn(&str) -> (String, String) + Send + Sync>),
}

impl Credentials {
    /// The (username, password) pair this device presents, if any.
    pub fn for_device(&self, device_id: &str) -> Option<(String, String)> {
        match self {
            Credentials::Anonymous => None,
            Credentials::SharedPassword(p) => Some((device_id.to_owned(), p.clone())),
            Credentials::PerDevice(f) => Some(f(device_id)),
        }
    }
}

/// Never prints a password.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::SharedPassword(_) => f.write_str("SharedPassword(<redacted>)"),
            Credentials::PerDevice(_) => f.write_str("PerDevice(<fn>)"),
        }
    }
}

/// Everything a fleet run needs. Build it with [`FleetConfig::new`] and change the fields
/// you care about; [`FleetConfig::validate`] (called by `Fleet::start`) rejects nonsense.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port (plain MQTT).
    pub port: u16,
    /// Number of simulated trackers, each with its own MQTT connection.
    pub devices: usize,
    /// Index of the first device: ids are `{prefix}{index:06}` for
    /// `first_index..first_index + devices`, so several fleets can share a broker.
    pub first_index: usize,
    /// Device id prefix (default `sim-`).
    pub prefix: String,
    /// Positions generated per second by each device.
    pub rate_per_device: f64,
    /// Points per MQTT message in normal operation (1 = a single JSON object).
    pub points_per_message: usize,
    /// Points per message when flushing a backlog (points buffered while disconnected).
    pub backlog_points_per_message: usize,
    /// A partly filled batch is sent anyway once its oldest point is this old.
    pub linger: Duration,
    /// Messages a device may have published and not yet acknowledged.
    pub max_inflight: u16,
    /// How devices log in.
    pub credentials: Credentials,
    /// TCP connect + CONNACK timeout (rounded up to whole seconds, at least 1 s).
    pub connect_timeout: Duration,
    /// MQTT keep-alive (0, or at least 1 s).
    pub keep_alive: Duration,
    /// Device connects are spread evenly over this time.
    pub ramp_up: Duration,
    /// Points generated per device, then it stops generating (it still resends until stop).
    pub max_points: Option<u64>,
    /// First wait after a failed connection; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Cap of the reconnect backoff.
    pub reconnect_max: Duration,
    /// Centre of the random walk (latitude, longitude in degrees).
    pub centre: (f64, f64),
    /// Devices turn back towards the centre past this distance, in metres.
    pub radius_m: f64,
    /// Seed of the movement generator (device `i` uses `seed ^ i`): same seed, same tracks.
    pub seed: u64,
}

impl FleetConfig {
    /// Defaults: 1 device, 1 point/s, one point per message, anonymous, Paris.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        FleetConfig {
            host: host.into(),
            port,
            devices: 1,
            first_index: 0,
            prefix: "sim-".to_owned(),
            rate_per_device: 1.0,
            points_per_message: 1,
            backlog_points_per_message: 50,
            linger: Duration::from_secs(5),
            max_inflight: 10,
            credentials: Credentials::Anonymous,
            connect_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(30),
            ramp_up: Duration::ZERO,
            max_points: None,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            centre: (48.8566, 2.3522),
            radius_m: 20_000.0,
            seed: 0x5eed,
        }
    }

    /// The id of device number `index` (absolute index, including `first_index`).
    pub fn device_id(&self, index: usize) -> String {
        format!("{}{:06}", self.prefix, index)
    }

    /// The MQTT topic a device publishes to.
    pub fn topic(device_id: &str) -> String {
        format!("devices/{device_id}/positions")
    }

    /// Checks every setting; the error says which one is wrong and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::EmptyHost);
        }
        if self.port == 0 {
            return Err(ConfigError::ZeroPort);
        }
        if self.devices == 0 {
            return Err(ConfigError::NoDevices);
        }
        if self.first_index.checked_add(self.devices).is_none() {
            return Err(ConfigError::IndexOverflow);
        }
        if !self.rate_per_device.is_finite()
            || self.rate_per_device <= 0.0
            || self.rate_per_device > MAX_RATE_PER_DEVICE
        {
            return Err(ConfigError::Rate(self.rate_per_device));
        }
        for (name, v) in [
            ("points_per_message", self.points_per_message),
            (
                "backlog_points_per_message",
                self.backlog_points_per_message,
            ),
        ] {
            if v == 0 || v > MAX_POINTS_PER_MESSAGE {
                return Err(ConfigError::PointsPerMessage { name, value: v });
            }
        }
        if self.max_inflight == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroConnectTimeout);
        }
        if !self.keep_alive.is_zero()
            && (self.keep_alive < Duration::from_secs(1)
                || self.keep_alive > Duration::from_secs(u64::from(u16::MAX)))
        {
            return Err(ConfigError::KeepAlive(self.keep_alive));
        }
        if self.max_points == Some(0) {
            return Err(ConfigError::ZeroMaxPoints);
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err(ConfigError::Backoff {
                min: self.reconnect_min,
                max: self.reconnect_max,
            });
        }
        let (lat, lon) = self.centre;
        let usable = lat.is_finite()
            && lon.is_finite()
            && (-85.0..=85.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon);
        if !usable {
            return Err(ConfigError::Centre { lat, lon });
        }
        if !self.radius_m.is_finite() || self.radius_m <= 0.0 {
            return Err(ConfigError::Radius(self.radius_m));
        }
        Ok(())
    }
}

/// A setting that cannot work, with what to do instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("broker host is empty: give the broker's host name or address (e.g. 127.0.0.1)")]
    EmptyHost,
    #[error("broker port is 0: give the port the broker listens on (e.g. 1883)")]
    ZeroPort,
    #[error("device count is 0: a fleet needs at least 1 device")]
    NoDevices,
    #[error("first_index + devices overflows: use smaller numbers")]
    IndexOverflow,
    #[error(
        "rate per device is {0}: it must be a number above 0 and at most {MAX_RATE_PER_DEVICE} points per second"
    )]
    Rate(f64),
    #[error("{name} is {value}: it must be between 1 and {MAX_POINTS_PER_MESSAGE}")]
    PointsPerMessage { name: &'static str, value: usize },
    #[error("max_inflight is 0: allow at least 1 unacknowledged message per device")]
    ZeroInflight,
    #[error("connect timeout is 0: give at least 1s")]
    ZeroConnectTimeout,
    #[error("keep-alive is {0:?}: use 0 (off) or between 1s and 65535s")]
    KeepAlive(Duration),
    #[error("max_points is 0: leave it unset for no limit, or give at least 1")]
    ZeroMaxPoints,
    #[error("reconnect backoff min {min:?} / max {max:?}: min must be above 0 and max >= min")]
    Backoff { min: Duration, max: Duration },
    #[error("centre ({lat}, {lon}) is not a usable position: latitude within ±85, longitude within ±180")]
    Centre { lat: f64, lon: f64 },
    #[error("radius {0} m: it must be a positive number of metres")]
    Radius(f64),
    #[error("Fleet::start must run inside a tokio runtime")]
    NoRuntime,
}
