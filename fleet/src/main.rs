//! `fleet`: run simulated GPS trackers against an MQTT broker from the command line, print
//! progress once per second and a final summary, optionally write every acknowledged point.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use fleet::{Credentials, Fleet, FleetConfig};
use tracing_subscriber::EnvFilter;

/// Simulated GPS trackers: real MQTT clients publishing QoS 1 positions and counting PUBACKs.
/// Every flag can also be given as an environment variable FLEET_<FLAG>.
#[derive(Parser, Debug)]
#[command(name = "fleet", version)]
struct Args {
    /// Broker host.
    #[arg(long, env = "FLEET_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Broker MQTT port.
    #[arg(long, env = "FLEET_PORT", default_value_t = 1883)]
    port: u16,
    /// Number of simulated trackers (one MQTT connection each).
    #[arg(long, env = "FLEET_DEVICES", default_value_t = 100)]
    devices: usize,
    /// Index of the first device (ids are {prefix}{index:06}).
    #[arg(long, env = "FLEET_FIRST_INDEX", default_value_t = 0)]
    first_index: usize,
    /// Device id prefix.
    #[arg(long, env = "FLEET_PREFIX", default_value = "sim-")]
    prefix: String,
    /// Points per second per device.
    #[arg(
        long,
        env = "FLEET_RATE",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    rate: f64,
    /// Points per MQTT message (more than 1 sends JSON arrays).
    #[arg(long, env = "FLEET_POINTS_PER_MESSAGE", default_value_t = 1)]
    points_per_message: usize,
    /// Points per message when flushing points buffered during an outage.
    #[arg(long, env = "FLEET_BACKLOG_POINTS_PER_MESSAGE", default_value_t = 50)]
    backlog_points_per_message: usize,
    /// Unacknowledged messages allowed per device.
    #[arg(long, env = "FLEET_MAX_INFLIGHT", default_value_t = 10)]
    max_inflight: u16,
    /// How long to generate points (e.g. 60s, 5m). Without it: until Ctrl-C, or until all
    /// points are acknowledged when --max-points is given.
    #[arg(long, env = "FLEET_DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Points per device, then the device stops generating.
    #[arg(long, env = "FLEET_MAX_POINTS")]
    max_points: Option<u64>,
    /// Spread the device connects over this time.
    #[arg(long, env = "FLEET_RAMP_UP", value_parser = humantime::parse_duration, default_value = "0s")]
    ramp_up: Duration,
    /// After generating stops, how long to keep trying to get buffered points acknowledged.
    #[arg(long, env = "FLEET_DRAIN", value_parser = humantime::parse_duration, default_value = "30s")]
    drain: Duration,
    /// MQTT keep-alive.
    #[arg(long, env = "FLEET_KEEP_ALIVE", value_parser = humantime::parse_duration, default_value = "30s")]
    keep_alive: Duration,
    /// Connect (TCP + CONNACK) timeout.
    #[arg(long, env = "FLEET_CONNECT_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5s")]
    connect_timeout: Duration,
    /// Cap of the reconnect backoff.
    #[arg(long, env = "FLEET_RECONNECT_MAX", value_parser = humantime::parse_duration, default_value = "5s")]
    reconnect_max: Duration,
    /// Password shared by all devices (username = device id). Anonymous when absent.
    #[arg(long, env = "FLEET_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Write every acknowledged point as `device_id,time_ms` lines to this file.
    #[arg(long, env = "FLEET_ACKED_OUT")]
    acked_out: Option<PathBuf>,
    /// Centre latitude of the random walk.
    #[arg(
        long,
        env = "FLEET_CENTRE_LAT",
        default_value_t = 48.8566,
        allow_negative_numbers = true
    )]
    centre_lat: f64,
    /// Centre longitude of the random walk.
    #[arg(
        long,
        env = "FLEET_CENTRE_LON",
        default_value_t = 2.3522,
        allow_negative_numbers = true
    )]
    centre_lon: f64,
    /// Seed of the movement generator.
    #[arg(long, env = "FLEET_SEED", default_value_t = 0x5eed)]
    seed: u64,
    /// No per-second progress lines.
    #[arg(long, env = "FLEET_QUIET")]
    quiet: bool,
}

impl Args {
    fn config(&self) -> FleetConfig {
        let mut c = FleetConfig::new(self.host.clone(), self.port);
        c.devices = self.devices;
        c.first_index = self.first_index;
        c.prefix = self.prefix.clone();
        c.rate_per_device = self.rate;
        c.points_per_message = self.points_per_message;
        c.backlog_points_per_message = self.backlog_points_per_message;
        c.max_inflight = self.max_inflight;
        c.max_points = self.max_points;
        c.ramp_up = self.ramp_up;
        c.keep_alive = self.keep_alive;
        c.connect_timeout = self.connect_timeout;
        c.reconnect_max = self.reconnect_max.max(c.reconnect_min);
        c.centre = (self.centre_lat, self.centre_lon);
        c.seed = self.seed;
        if let Some(p) = &self.password {
            c.credentials = Credentials::SharedPassword(p.clone());
        }
        c
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,fleet=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = args.config();
    let fleet = Fleet::start(cfg).context("invalid fleet settings")?;
    let stats = fleet.stats();
    let started = Instant::now();
    let end = args.duration.map(|d| started + d);

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut prev = stats.snapshot();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => {
                eprintln!("interrupted: draining for up to {}", humantime::format_duration(args.drain));
                break;
            }
        }
        let s = stats.snapshot();
        if !args.quiet {
            let lat = stats.take_interval_latency();
            println!(
                "t={:>4}s connected {}/{} published {}/s acked {}/s p99 {:.1} ms unacked {} reconnects {} errors {}",
                started.elapsed().as_secs(),
                s.connected,
                s.devices,
                s.published_points - prev.published_points,
                s.acked_points - prev.acked_points,
                lat.p99_ms,
                s.generated - s.acked_points,
                s.reconnects,
                s.errors,
            );
        }
        prev = s;
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        if end.is_none() && fleet.expected_points().is_some_and(|n| s.acked_points >= n) {
            break;
        }
    }

    let last_error = stats.last_error();
    let report = fleet.stop(args.drain).await;
    println!("{report}");
    if let Some(path) = &args.acked_out {
        let f = File::create(path)
            .with_context(|| format!("cannot create --acked-out file {}", path.display()))?;
        report
            .write_acked_csv(BufWriter::new(f))
            .with_context(|| format!("cannot write --acked-out file {}", path.display()))?;
        println!(
            "wrote {} acknowledged points to {}",
            report.acked.len(),
            path.display()
        );
    }
    if report.acked.is_empty() && report.generated > 0 {
        bail!(
            "no point was acknowledged: is the broker at {}:{} up and are the credentials right? last error: {}",
            args.host,
            args.port,
            last_error.unwrap_or_else(|| "none".into())
        );
    }
    if !report.unacked.is_empty() {
        eprintln!(
            "warning: {} points were never acknowledged (drain time {} ran out)",
            report.unacked.len(),
            humantime::format_duration(args.drain)
        );
    }
    Ok(())
}
