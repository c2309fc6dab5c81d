//! The continuous publisher of `deployer reboot-test`: logs in as the probe device and
//! publishes one point every `1 / rate` seconds at QoS 1, through a reboot of the host, like
//! a tracker: points keep becoming due while the broker is away and wait in the [`Ledger`];
//! a lost connection (closed, or silent past the timeout) is retried with capped exponential
//! backoff; on the next connection the oldest points go first, paced below the broker's
//! per-account message rate. Every PUBACK is recorded; [`Publisher::stop`] lets the last
//! points drain and returns the [`Record`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder as _;
use rumqttc::mqttbytes::v4::{Packet, Publish};
use rumqttc::mqttbytes::QoS;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::ledger::Ledger;
use super::login::{login, Session, KEEP_ALIVE_SECS};
use super::once::{now_ms, payload};
use super::{topic, Endpoint, ProbeError};

/// Highest accepted rate (points per second): modest, well below the broker's default of 50
/// messages per second per account, leaving room to catch up after an outage.
pub const MAX_RATE: f64 = 20.0;
/// Points in flight (sent, PUBACK awaited) at once.
const WINDOW: usize = 16;
/// Least time between two PUBLISHes: at most 40 per second, also while catching up.
const SEND_GAP: Duration = Duration::from_millis(25);
/// What the publisher marks its points with (`attributes.probe`).
pub const REBOOT_MARK: &str = "deployer reboot-test";

/// One continuous run.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub endpoint: Endpoint,
    /// Points per second, in (0, MAX_RATE].
    pub rate: f64,
    /// Give up after this long without a connection.
    pub max_outage: Duration,
    /// First wait between reconnect attempts; doubles (with jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl StreamConfig {
    /// Defaults: give up after 15 minutes down, reconnect after 0.5 s doubling to 5 s.
    pub fn new(endpoint: Endpoint, rate: f64) -> Self {
        Self {
            endpoint,
            rate,
            max_outage: Duration::from_secs(15 * 60),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// Refuses settings that cannot work.
    pub fn check(&self) -> Result<(), ProbeError> {
        self.endpoint.check()?;
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_RATE) {
            return Err(ProbeError::Config(format!(
                "rate {}: give a number of points per second above 0 and at most {MAX_RATE}",
                self.rate
            )));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err(ProbeError::Config(
                "the reconnect backoff needs 0 < min <= max".into(),
            ));
        }
        if self.max_outage.is_zero() {
            return Err(ProbeError::Config("max_outage must be positive".into()));
        }
        Ok(())
    }

    fn backoff(&self) -> backon::ExponentialBackoff {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.backoff_min)
            .with_max_delay(self.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// What the publisher is doing, for progress lines and for the command's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Points due so far (generated).
    pub due: u64,
    /// Points acknowledged by a PUBACK.
    pub acked: usize,
    /// Due points waiting to be sent (the offline buffer).
    pub queued: usize,
    /// Points sent whose PUBACK is awaited.
    pub in_flight: usize,
    /// Points sent again after a lost connection.
    pub resent: u64,
    pub connected: bool,
    /// Successful logins (the first one included).
    pub sessions: u32,
    /// Connections lost.
    pub lost: u32,
    /// The latest error (a lost connection, a failed reconnect).
    pub last_error: Option<String>,
    /// Set when the publisher stopped trying: the broker stayed away past `max_outage`.
    pub gave_up: Option<String>,
}

impl PublisherStats {
    /// One progress line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}, {} due, {} acked, {} buffered, {} in flight, {} reconnects",
            if self.connected {
                "connected"
            } else {
                "reconnecting"
            },
            self.due,
            self.acked,
            self.queued,
            self.in_flight,
            self.sessions.saturating_sub(1)
        );
        if !self.connected {
            if let Some(e) = &self.last_error {
                s.push_str(&format!(" (last: {e})"));
            }
        }
        s
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Record {
    pub device_id: String,
    /// Times (epoch ms, ascending) of every point a PUBACK acknowledged.
    pub acked: Vec<i64>,
    /// Times of the due points never acknowledged (the drain ended first).
    pub unacked: Vec<i64>,
    /// First and last due point's time: every point of the run lies in it.
    pub span: Option<(i64, i64)>,
    /// PUBACKs beyond the first for a point (a resent point acknowledged twice).
    pub repeated_acks: u64,
    pub stats: PublisherStats,
}

/// A running publisher; [`Publisher::stop`] ends it.
pub struct Publisher {
    stats: Arc<Mutex<PublisherStats>>,
    /// The drain deadline, once stopping.
    stop: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<Record>,
    device_id: String,
}

fn lock(stats: &Mutex<PublisherStats>) -> std::sync::MutexGuard<'_, PublisherStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

impl Publisher {
    /// Checks the settings, logs in (an error here is returned at once: wrong secret,
    /// certificate, address) and starts publishing in a task of the current runtime (a
    /// multi-thread runtime keeps it going while the caller does other things).
    pub async fn start(cfg: StreamConfig) -> Result<Publisher, ProbeError> {
        cfg.check()?;
        let client_id = format!("{}-reboot-{}", cfg.endpoint.device_id, std::process::id());
        let session = login(&cfg.endpoint, client_id.clone()).await?;
        let stats = Arc::new(Mutex::new(PublisherStats {
            connected: true,
            sessions: 1,
            ..Default::default()
        }));
        let (stop, stop_rx) = watch::channel(None);
        let device_id = cfg.endpoint.device_id.clone();
        let run = Run {
            ledger: Ledger::new(now_ms(), cfg.rate),
            topic: topic(&cfg.endpoint.device_id),
            cfg,
            client_id,
            stats: stats.clone(),
            stop: stop_rx,
            drain_until: None,
        };
        let task = tokio::spawn(run.run(session));
        Ok(Publisher {
            stats,
            stop,
            task,
            device_id,
        })
    }

    pub fn stats(&self) -> PublisherStats {
        lock(&self.stats).clone()
    }

    /// Stops making points due, gives the queued and in-flight ones up to `drain` to be
    /// acknowledged (reconnecting if needed), disconnects and returns the record.
    pub async fn stop(self, drain: Duration) -> Record {
        let _ = self.stop.send(Some(Instant::now() + drain));
        match self.task.await {
            Ok(record) => record,
            Err(e) => {
                let mut stats = lock(&self.stats).clone();
                stats.gave_up = Some(format!("the publisher task failed: {e}"));
                Record {
                    device_id: self.device_id,
                    acked: Vec::new(),
                    unacked: Vec::new(),
                    span: None,
                    repeated_acks: 0,
                    stats,
                }
            }
        }
    }
}

/// How a connection ended.
enum End {
    /// Stopping, and everything drained (or the drain time is over).
    Stopped,
    Lost(ProbeError),
}

/// The publisher's task state.
struct Run {
    cfg: StreamConfig,
    client_id: String,
    topic: String,
    ledger: Ledger,
    stats: Arc<Mutex<PublisherStats>>,
    stop: watch::Receiver<Option<Instant>>,
    /// Set once stopping: the end of the drain.
    drain_until: Option<Instant>,
}

impl Run {
    async fn run(mut self, first: Session) -> Record {
        let mut session = Some(first);
        let mut backoff = self.cfg.backoff();
        let mut down_since: Option<Instant> = None;
        loop {
            if let Some(s) = session.take() {
                match self.connected(s).await {
                    End::Stopped => break,
                    End::Lost(e) => {
                        self.ledger.connection_lost();
                        down_since = Some(Instant::now());
                        tracing::info!(error = %e, "probe connection lost; reconnecting");
                        self.update(|st| {
                            st.connected = false;
                            st.lost += 1;
                            st.last_error = Some(e.to_string());
                        });
                    }
                }
                continue;
            }
            self.ledger.generate_until(now_ms());
            self.update(|_| {});
            let now = Instant::now();
            if self.drain_until.is_some_and(|d| now >= d) {
                break;
            }
            if let Some(since) = down_since {
                if now.duration_since(since) > self.cfg.max_outage {
                    let last = lock(&self.stats).last_error.clone().unwrap_or_default();
                    self.update(|st| {
                        st.gave_up = Some(format!(
                            "no connection to {} for {} s; last error: {last}",
                            self.cfg.endpoint.address,
                            self.cfg.max_outage.as_secs()
                        ))
                    });
                    break;
                }
            }
            let wait = backoff.next().unwrap_or(self.cfg.backoff_max);
            let woke = Instant::now() + wait;
            if self.drain_until.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep_until(woke) => {}
                    changed = self.stop.changed() => self.stopping(changed.is_ok()),
                }
            } else {
                tokio::time::sleep_until(woke.min(self.drain_until.unwrap_or(woke))).await;
            }
            let attempt = login(&self.cfg.endpoint, self.client_id.clone());
            let attempt = match self.drain_until {
                Some(d) => tokio::time::timeout_at(d, attempt).await.ok(),
                None => Some(attempt.await),
            };
            match attempt {
                Some(Ok(s)) => {
                    backoff = self.cfg.backoff();
                    down_since = None;
                    tracing::info!("probe reconnected");
                    self.update(|st| {
                        st.connected = true;
                        st.sessions += 1;
                    });
                    session = Some(s);
                }
                Some(Err(e)) => self.update(|st| st.last_error = Some(e.to_string())),
                None => {}
            }
        }
        self.update(|st| st.connected = false);
        Record {
            device_id: self.cfg.endpoint.device_id.clone(),
            acked: self.ledger.acked_times(),
            unacked: self.ledger.unacked_times(),
            span: self.ledger.span(),
            repeated_acks: self.ledger.repeated_acks(),
            stats: lock(&self.stats).clone(),
        }
    }

    /// The stop signal arrived (`ok`), or the handle is gone (stop at once).
    fn stopping(&mut self, ok: bool) {
        let until = if ok {
            *self.stop.borrow_and_update()
        } else {
            None
        };
        self.ledger.generate_until(now_ms());
        self.ledger.freeze();
        self.drain_until = Some(until.unwrap_or_else(Instant::now));
    }

    fn update(&self, f: impl FnOnce(&mut PublisherStats)) {
        let mut st = lock(&self.stats);
        st.due = self.ledger.due();
        st.acked = self.ledger.acked();
        st.queued = self.ledger.queued();
        st.in_flight = self.ledger.in_flight();
        st.resent = self.ledger.resent();
        f(&mut st);
    }

    /// Publishes over one connection until it is lost or the run has drained.
    async fn connected(&mut self, mut s: Session) -> End {
        match self.publish_over(&mut s).await {
            Ok(()) => {
                let _ = s.wire.send(&mut s.io, Packet::Disconnect).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), s.io.shutdown()).await;
                End::Stopped
            }
            Err(e) => End::Lost(e),
        }
    }

    async fn publish_over(&mut self, s: &mut Session) -> Result<(), ProbeError> {
        let timeout = s.wire.timeout;
        let ping_every = Duration::from_secs(u64::from(KEEP_ALIVE_SECS) / 2);
        let mut last_sent = Instant::now();
        let mut next_send = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            self.ledger.generate_until(now_ms());
            let now = Instant::now();
            if let Some(d) = self.drain_until {
                if self.ledger.settled() || now >= d {
                    return Ok(());
                }
            }
            if self
                .ledger
                .oldest_wait(now.into_std())
                .is_some_and(|w| w > timeout)
            {
                return Err(timed_out(s, "a PUBACK"));
            }
            if ping_sent.is_some_and(|p| now.duration_since(p) > timeout) {
                return Err(timed_out(s, "a PINGRESP"));
            }
            if now >= next_send {
                if let Some((pkid, _, time)) = self.ledger.next_to_send(WINDOW, now.into_std()) {
                    let mut publish = Publish::new(
                        self.topic.clone(),
                        QoS::AtLeastOnce,
                        payload(time, REBOOT_MARK),
                    );
                    publish.pkid = pkid;
                    s.wire.send(&mut s.io, Packet::Publish(publish)).await?;
                    last_sent = Instant::now();
                    next_send = last_sent + SEND_GAP;
                }
            }
            if ping_sent.is_none() && now.duration_since(last_sent) >= ping_every {
                s.wire.send(&mut s.io, Packet::PingReq).await?;
                ping_sent = Some(now);
                last_sent = now;
            }
            self.update(|_| {});

            // Sleep until something is to be done, unless the broker speaks first.
            let now = Instant::now();
            let mut wake = last_sent + ping_every;
            if let Some(d) = self.ledger.next_due_in(now_ms()) {
                wake = wake.min(now + d);
            }
            if self.ledger.queued() > 0 && self.ledger.in_flight() < WINDOW {
                wake = wake.min(next_send);
            }
            if let Some(w) = self.ledger.oldest_wait(now.into_std()) {
                wake = wake.min(now + timeout.saturating_sub(w) + Duration::from_millis(1));
            }
            if let Some(p) = ping_sent {
                wake = wake.min(p + timeout + Duration::from_millis(1));
            }
            if let Some(d) = self.drain_until {
                wake = wake.min(d);
            }
            let stopping = self.drain_until.is_some();
            tokio::select! {
                read = s.wire.fill(
                    &mut s.io,
                    "while the probe was publishing",
                    "The host may be going down: the probe reconnects.",
                ) => read?,
                _ = tokio::time::sleep_until(wake) => {}
                changed = self.stop.changed(), if !stopping => self.stopping(changed.is_ok()),
            }
            while let Some(packet) = s.wire.buffered()? {
                match packet {
                    Packet::PubAck(ack) => {
                        self.ledger
                            .ack(ack.pkid)
                            .map_err(|e| s.wire.protocol(e.to_string()))?;
                    }
                    Packet::PingResp => ping_sent = None,
                    other => {
                        return Err(s
                            .wire
                            .protocol(format!("expected PUBACK or PINGRESP, got {other:?}")))
                    }
                }
            }
        }
    }
}

fn timed_out(s: &Session, what: &'static str) -> ProbeError {
    ProbeError::Timeout {
        address: s.wire.address.clone(),
        what,
        secs: s.wire.timeout.as_secs().max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt_probe::Transport;

    fn cfg(rate: f64) -> StreamConfig {
        StreamConfig::new(
            Endpoint {
                address: "127.0.0.1:1".into(),
                transport: Transport::Plain,
                device_id: "deployer-probe".into(),
                password: "a-secret-of-the-unit-test-000000".into(),
                timeout: Duration::from_secs(1),
            },
            rate,
        )
    }

    #[test]
    fn rates_outside_the_range_are_refused() {
        assert!(cfg(1.0).check().is_ok());
        assert!(cfg(MAX_RATE).check().is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_RATE + 0.5] {
            let e = cfg(bad).check().unwrap_err().to_string();
            assert!(e.contains("points per second"), "{bad}: {e}");
        }
        let mut c = cfg(1.0);
        c.backoff_max = Duration::from_millis(1);
        assert!(c.check().is_err());
    }

    #[test]
    fn the_progress_line_names_the_state() {
        let st = PublisherStats {
            due: 10,
            acked: 7,
            queued: 3,
            sessions: 2,
            last_error: Some("cannot connect".into()),
            ..Default::default()
        };
        let line = st.line();
        assert!(
            line.starts_with("reconnecting, 10 due, 7 acked, 3 buffered")
                && line.contains("1 reconnects")
                && line.contains("(last: cannot connect)"),
            "{line}"
        );
    }
}
