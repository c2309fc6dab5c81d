//! One simulated tracker as a tokio task: generates positions on schedule, keeps them in its
//! [`Ledger`] until PUBACK, publishes them over its own MQTT connection (QoS 1, clean
//! session), and after a lost connection reconnects with backoff and resends what was not
//! acknowledged, forever until the fleet drains it.
//!
//! The rumqttc `poll()` future is never dropped while the connection lives (it is not
//! cancel-safe: a write interrupted half-way would leave a publish registered but unsent);
//! timers and control messages are raced against the same pinned future. The device keeps
//! one timer (reset, not re-created) and one pending "phase changed" future, so an MQTT
//! event costs no timer registration and no lock on the fleet-wide control channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tokio::time::{sleep_until, Sleep};
use tracing::{debug, trace};

use crate::backoff::Backoff;
use crate::config::FleetConfig;
use crate::ledger::Ledger;
use crate::motion::Walk;
use crate::position::{encode_payload, ENCODED_POINT_HINT};
use crate::stats::FleetStats;

/// What the fleet tells its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Generate and publish.
    Running,
    /// Generate nothing new; get the buffered points acknowledged until `deadline`, then
    /// disconnect.
    Draining { deadline: Instant },
}

/// What one device leaves behind.
#[derive(Debug)]
pub(crate) struct DeviceOutcome {
    pub device_id: String,
    pub acked: Vec<i64>,
    pub unacked: Vec<i64>,
}

/// Why a connection ended.
enum ConnEnd {
    /// Drained (or out of time): the device is done.
    Finished,
    /// Lost or refused; `was_up` if a CONNACK had been received.
    Lost { was_up: bool },
}

type PhaseFuture = Pin<Box<dyn Future<Output = Phase> + Send>>;

/// Waits until the fleet leaves `Running`. If the Fleet handle is dropped without `stop()`, the device
/// drains with no time left.
fn watch_phase(mut rx: watch::Receiver<Phase>) -> PhaseFuture {
    Box::pin(async move {
        loop {
            match rx.changed().await {
                Ok(()) => {
                    let p = *rx.borrow_and_update();
                    if p != Phase::Running {
                        return p;
                    }
                }
                Err(_) => {
                    return Phase::Draining {
                        deadline: Instant::now(),
                    }
                }
            }
        }
    })
}

/// Far enough in the future to mean "never" for a timer.
const NEVER: Duration = Duration::from_secs(86_400 * 365);
/// Extra slots in the client's request queue beyond `max_inflight` (for DISCONNECT).
const QUEUE_SLACK: usize = 4;

pub(crate) struct Device {
    id: String,
    topic: String,
    cfg: Arc<FleetConfig>,
    stats: Arc<FleetStats>,
    /// Resolves when the fleet changes phase; re-armed after each change.
    next_phase: PhaseFuture,
    phase: Phase,
    /// The one timer of this device: next point due, linger, drain deadline, or reconnect.
    timer: Pin<Box<Sleep>>,
    ledger: Ledger,
    walk: Walk,
    /// When the device may first connect (its slot in the ramp-up).
    start_at: Instant,
    /// When point number 0 is due; point k is due at `t0 + k / rate`.
    t0: Instant,
    generated: u64,
    last_time_ms: i64,
    ever_connected: bool,
    backoff: Backoff,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Device {
    pub(crate) fn new(
        index: usize,
        start_at: Instant,
        cfg: Arc<FleetConfig>,
        stats: Arc<FleetStats>,
        control: watch::Receiver<Phase>,
    ) -> Self {
        let id = cfg.device_id(index);
        let seed = cfg.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Spread the devices' ticks within one period so they do not all fire together.
        let period = (1.0 / cfg.rate_per_device).min(1.0);
        let offset = Duration::from_secs_f64(period * ((seed >> 11) as f64 / (1u64 << 53) as f64));
        let phase = *control.borrow();
        Device {
            next_phase: watch_phase(control),
            timer: Box::pin(sleep_until((start_at + NEVER).into())),
            topic: FleetConfig::topic(&id),
            id,
            walk: Walk::new(seed, cfg.centre, cfg.radius_m),
            backoff: Backoff::new(cfg.reconnect_min, cfg.reconnect_max, seed),
            phase,
            ledger: Ledger::new(),
            start_at,
            t0: start_at + offset,
            generated: 0,
            last_time_ms: i64::MIN,
            ever_connected: false,
            stats,
            cfg,
        }
    }

    /// Runs the device until the fleet drains it; returns where every point ended.
    pub(crate) async fn run(mut self) -> DeviceOutcome {
        if self.idle_until(self.start_at).await {
            loop {
                match self.connection().await {
                    ConnEnd::Finished => break,
                    ConnEnd::Lost { was_up } => {
                        if was_up {
                            self.backoff.reset();
                        }
                        let retry_at = Instant::now() + self.backoff.next_wait();
                        if !self.idle_until(retry_at).await {
                            break;
                        }
                    }
                }
            }
        }
        let (acked, unacked) = self.ledger.into_times();
        DeviceOutcome {
            device_id: self.id,
            acked,
            unacked,
        }
    }

    fn generation_done(&self) -> bool {
        self.phase != Phase::Running || self.cfg.max_points.is_some_and(|m| self.generated >= m)
    }

    fn drain_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Draining { deadline } => Some(deadline),
        }
    }

    /// Draining and nothing left to deliver.
    fn drained(&self) -> bool {
        self.phase != Phase::Running && self.ledger.is_settled()
    }

    /// Generates every point due by `now`.
    fn generate_due(&mut self, now: Instant) {
        if self.generation_done() || now < self.t0 {
            return;
        }
        let elapsed = now.duration_since(self.t0).as_secs_f64();
        let mut due = (elapsed * self.cfg.rate_per_device).floor() as u64 + 1;
        if let Some(m) = self.cfg.max_points {
            due = due.min(m);
        }
        if due <= self.generated {
            return;
        }
        let now_ms = wall_ms();
        let n = due - self.generated;
        for _ in 0..n {
            let t = now_ms.max(self.last_time_ms.saturating_add(1));
            self.last_time_ms = t;
            self.ledger.push(self.walk.step(t));
        }
        self.generated = due;
        self.stats.on_generated(n);
    }

    /// When the next point is due, if any.
    fn next_point_at(&self) -> Option<Instant> {
        if self.generation_done() {
            return None;
        }
        Some(self.t0 + Duration::from_secs_f64(self.generated as f64 / self.cfg.rate_per_device))
    }

    /// When a partly filled batch must go out (oldest point older than `linger`).
    fn linger_at(&self, now: Instant) -> Option<Instant> {
        if self.cfg.points_per_message <= 1 {
            return None;
        }
        let oldest = self.ledger.oldest_buffered()?;
        let due_ms = oldest.saturating_add(self.cfg.linger.as_millis() as i64);
        let wait = due_ms.saturating_sub(wall_ms()).max(0) as u64;
        Some(now + Duration::from_millis(wait))
    }

    fn flush_partial(&self) -> bool {
        if self.generation_done() {
            return true;
        }
        match self.ledger.oldest_buffered() {
            Some(oldest) => oldest.saturating_add(self.cfg.linger.as_millis() as i64) <= wall_ms(),
            None => false,
        }
    }

    /// Publishes as many messages as the in-flight window allows.
    fn pump(&mut self, client: &AsyncClient) {
        let partial = self.flush_partial();
        let max = usize::from(self.cfg.max_inflight);
        while self.ledger.messages_in_flight() < max {
            let Some(points) = self.ledger.take_batch(
                self.cfg.points_per_message,
                self.cfg.backlog_points_per_message,
                partial,
            ) else {
                break;
            };
            let mut payload = Vec::with_capacity(points.len() * ENCODED_POINT_HINT + 2);
            encode_payload(&points, &mut payload);
            let n = points.len();
            match client.try_publish(self.topic.as_str(), QoS::AtLeastOnce, false, payload) {
                Ok(()) => {
                    self.ledger.sent(points, Instant::now());
                    self.stats.on_published(n);
                }
                Err(e) => {
                    self.ledger.unsend(points);
                    self.stats
                        .on_error(format!("{}: MQTT client refused a publish: {e}", self.id));
                    break;
                }
            }
        }
    }

    fn on_phase(&mut self, phase: Phase) {
        self.phase = phase;
        // Draining is final: stop() consumes the Fleet, so nothing follows it.
        self.next_phase = Box::pin(std::future::pending());
    }

    /// Points the timer at the earliest of `wakes` (or far away), re-arming only if needed.
    fn arm(&mut self, wakes: &[Option<Instant>]) {
        let at = match wakes.iter().flatten().min() {
            Some(at) => *at,
            None => self.start_at + NEVER,
        };
        let at: tokio::time::Instant = at.into();
        if self.timer.deadline() != at || self.timer.is_elapsed() {
            self.timer.as_mut().reset(at);
        }
    }

    /// Waits until `until` while generating points. False if the device is done (drain
    /// deadline reached, or drained) and must not connect again.
    async fn idle_until(&mut self, until: Instant) -> bool {
        loop {
            let now = Instant::now();
            self.generate_due(now);
            if self.drained() || self.drain_deadline().is_some_and(|d| d <= now) {
                return false;
            }
            if now >= until {
                return true;
            }
            let wakes = [Some(until), self.next_point_at(), self.drain_deadline()];
            self.arm(&wakes);
            tokio::select! {
                _ = &mut self.timer => {}
                p = &mut self.next_phase => self.on_phase(p),
            }
        }
    }

    fn mqtt_options(&self) -> (MqttOptions, NetworkOptions) {
        let cfg = &self.cfg;
        let mut o = MqttOptions::new(self.id.as_str(), cfg.host.as_str(), cfg.port);
        o.set_clean_session(true);
        // Validated: 0 or within [1 s, 65535 s], so rumqttc's assertion holds.
        o.set_keep_alive(cfg.keep_alive);
        // rumqttc numbers packets 1..=inflight; a window well above ours keeps a late PUBACK
        // from colliding with a new packet id.
        o.set_inflight(cfg.max_inflight.saturating_mul(4).max(100));
        o.set_request_channel_capacity(usize::from(cfg.max_inflight) + QUEUE_SLACK);
        let max_out =
            cfg.backlog_points_per_message.max(cfg.points_per_message) * ENCODED_POINT_HINT * 2
                + 1024;
        o.set_max_packet_size(64 * 1024, max_out);
        if let Some((user, pass)) = cfg.credentials.for_device(&self.id) {
            o.set_credentials(user, pass);
        }
        let mut n = NetworkOptions::new();
        n.set_tcp_nodelay(true);
        n.set_connection_timeout(cfg.connect_timeout.as_secs_f64().ceil().max(1.0) as u64);
        (o, n)
    }

    /// One connection, from connect to loss or to a clean disconnect after draining.
    async fn connection(&mut self) -> ConnEnd {
        let (opts, net) = self.mqtt_options();
        let cap = usize::from(self.cfg.max_inflight) + QUEUE_SLACK;
        let (client, mut eventloop) = AsyncClient::new(opts, cap);
        eventloop.set_network_options(net);
        let mut up = false;
        let mut disconnecting = false;
        loop {
            let event = {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    let linger_at = if up {
                        self.linger_at(Instant::now())
                    } else {
                        None
                    };
                    let wakes = [self.next_point_at(), linger_at, self.drain_deadline()];
                    self.arm(&wakes);
                    tokio::select! {
                        ev = &mut poll => break ev,
                        _ = &mut self.timer => {
                            let now = Instant::now();
                            if self.drain_deadline().is_some_and(|d| d <= now) {
                                debug!(device = %self.id, "drain deadline reached with {} points unacknowledged", self.ledger.unacked());
                                if up {
                                    self.stats.on_disconnected(0);
                                }
                                return ConnEnd::Finished;
                            }
                            self.generate_due(now);
                        }
                        p = &mut self.next_phase => self.on_phase(p),
                    }
                    if up && !disconnecting {
                        if self.drained() {
                            disconnecting = client.try_disconnect().is_ok();
                        } else {
                            self.pump(&client);
                        }
                    }
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    self.stats.on_connected(!self.ever_connected);
                    self.ever_connected = true;
                    self.ledger.on_connected();
                    trace!(device = %self.id, "connected");
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Err(e) = self.ledger.on_outgoing(pkid) {
                        self.stats.on_error(format!("{}: {e}", self.id));
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    match self.ledger.on_ack(ack.pkid, Instant::now()) {
                        Ok(a) => self.stats.on_acked(a.points, a.latency),
                        Err(e) => self.stats.on_error(format!("{}: {e}", self.id)),
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    if up {
                        self.stats.on_disconnected(0);
                    }
                    return ConnEnd::Finished;
                }
                Ok(_) => {}
                Err(e) => {
                    let resent = self.ledger.on_disconnect();
                    if up {
                        self.stats.on_disconnected(resent);
                    }
                    debug!(device = %self.id, error = %e, resent, "connection lost");
                    self.stats.on_error(format!("{}: {e}", self.id));
                    return ConnEnd::Lost { was_up: up };
                }
            }
            if up && !disconnecting {
                if self.drained() {
                    disconnecting = client.try_disconnect().is_ok();
                } else {
                    self.pump(&client);
                }
            }
        }
    }
}
