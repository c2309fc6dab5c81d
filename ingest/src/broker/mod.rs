//! The embedded MQTT broker (rmqtt in library mode, on our tokio runtime): listeners, the
//! plugins we rely on (shared subscriptions for the backend replicas, retained messages), and
//! the hooks that tie it to the WAL (see `publish`).

pub mod acl;
mod fd_limit;
pub(crate) mod gate;
pub mod limits;
mod publish;
mod security;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::net::{Builder, Listener};
use rmqtt::server::MqttServer;
use tokio::task::JoinHandle;

use gate::{Gate, Route, Transport};
pub use publish::DurableAppend;
pub use security::{SecurityOptions, ACL_PRIORITY};

use crate::health::Health;
use crate::position::ValidationConfig;
use crate::wal::Wal;

/// Broker settings.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    pub mqtt_listen: Option<SocketAddr>,
    pub ws_listen: Option<SocketAddr>,
    /// MQTT over TLS (needs `security.tls`).
    pub mqtts_listen: Option<SocketAddr>,
    /// MQTT over secure WebSocket (needs `security.tls`).
    pub wss_listen: Option<SocketAddr>,
    pub allow_anonymous: bool,
    pub max_packet_size: u32,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    /// Accounts, ACL, limits, TLS files (see `security`).
    pub security: SecurityOptions,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            mqtt_listen: Some(([0, 0, 0, 0], 1883).into()),
            ws_listen: None,
            mqtts_listen: None,
            wss_listen: None,
            allow_anonymous: false,
            max_packet_size: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 100_000,
            security: SecurityOptions::default(),
        }
    }
}

/// A running broker: the addresses it listens on and the task that accepts connections.
pub struct Broker {
    pub scx: ServerContext,
    pub mqtt_addr: Option<SocketAddr>,
    pub ws_addr: Option<SocketAddr>,
    pub mqtts_addr: Option<SocketAddr>,
    pub wss_addr: Option<SocketAddr>,
    accept: JoinHandle<()>,
    /// Counts open descriptors for the gates' budget (see `fd_limit`).
    fd_watch: JoinHandle<()>,
    gates: Vec<Gate>,
    _certs: Option<tls::Reloading>,
    _security: security::Installed,
}

impl Broker {
    /// Builds the context, registers plugins and hooks, binds every listener, and starts
    /// accepting connections.
    pub async fn start(
        opts: &BrokerOptions,
        wal: Wal,
        validation: Arc<ValidationConfig>,
        health: Arc<Health>,
    ) -> anyhow::Result<Broker> {
        let fd_budget = fd_limit::raise(opts.max_connections).map(fd_limit::FdBudget::new);
        let scx = ServerContext::new()
            .plugins_config_map_add(
                "rmqtt-retainer",
                "storage.type = \"ram\"\nmax_retained_messages = 100000\n",
            )
            .build()
            .await;
        rmqtt_shared_subscription::register(&scx, true, false)
            .await
            .map_err(|e| anyhow::anyhow!("shared subscription plugin: {e}"))?;
        rmqtt_retainer::register(&scx, true, false)
            .await
            .map_err(|e| anyhow::anyhow!("retainer plugin: {e}"))?;

        let register = scx.extends.hook_mgr().register();
        register
            .add_priority(
                Type::MessagePublishCheckAcl,
                0,
                Box::new(DurableAppend {
                    wal,
                    validation,
                    health: health.clone(),
                    trust_topic_identity: opts.allow_anonymous,
                }),
            )
            .await;
        // Load refusals the authentication hook notes and the gate spells out (see
        // `gate::refusal`).
        let refusals = Arc::new(gate::refusal::Refusals::new());
        let installed = security::install(
            &scx,
            register.as_ref(),
            &opts.security,
            opts.allow_anonymous,
            refusals.clone(),
        )
        .await;
        register.start().await;

        // The broker listens on loopback only, behind the gate (see `gate`): one listener per
        // transport that some public socket needs.
        let mut server = MqttServer::new(scx.clone());
        let mut mqtt_upstream = None;
        if opts.mqtt_listen.is_some() || opts.mqtts_listen.is_some() {
            let (l, addr) = internal_listener(opts, "internal/tcp", false)?;
            server = server.listener_by_id(l, 1);
            mqtt_upstream = Some(addr);
        }
        let mut ws_upstream = None;
        if opts.ws_listen.is_some() || opts.wss_listen.is_some() {
            let (l, addr) = internal_listener(opts, "internal/ws", true)?;
            server = server.listener_by_id(l, 2);
            ws_upstream = Some(addr);
        }
        let server = server.build();
        tracing::info!(
            mqtt = ?mqtt_upstream,
            ws = ?ws_upstream,
            "broker listening on loopback, behind the gate"
        );

        let certs = match (&opts.security.tls, opts.mqtts_listen.or(opts.wss_listen)) {
            (Some(files), Some(_)) => Some(tls::start(files)?),
            (None, Some(_)) => anyhow::bail!(
                "MQTT over TLS/WSS needs a certificate and key (--tls-cert, --tls-key)"
            ),
            _ => None,
        };
        let public = [
            (
                opts.mqtt_listen,
                Transport::Mqtt,
                false,
                mqtt_upstream,
                "MQTT",
            ),
            (
                opts.mqtts_listen,
                Transport::Mqtt,
                true,
                mqtt_upstream,
                "MQTT over TLS",
            ),
            (
                opts.ws_listen,
                Transport::WebSocket,
                false,
                ws_upstream,
                "MQTT over WebSocket",
            ),
            (
                opts.wss_listen,
                Transport::WebSocket,
                true,
                ws_upstream,
                "MQTT over secure WebSocket",
            ),
        ];
        // Without a readable limit, a budget that never holds anything back.
        let budget = fd_budget.unwrap_or_else(|| fd_limit::FdBudget::new(u64::MAX));
        let fd_watch = tokio::spawn(budget.clone().watch(health.clone()));
        let mut gates = Vec::new();
        let mut addrs = [None; 4];
        for (i, (addr, transport, secure, upstream, what)) in public.into_iter().enumerate() {
            let (Some(addr), Some(upstream)) = (addr, upstream) else {
                continue;
            };
            let route = Route {
                transport,
                tls: if secure {
                    certs.as_ref().map(|c| c.store.clone())
                } else {
                    None
                },
                upstream,
                deadline: opts.handshake_timeout,
                budget: budget.clone(),
                refusals: refusals.clone(),
            };
            let gate = Gate::bind(addr, route)
                .with_context(|| format!("cannot listen for {what} on {addr}"))?;
            addrs[i] = Some(gate.local);
            gates.push(gate);
        }
        let accept = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "MQTT server stopped");
            }
        });
        Ok(Broker {
            scx,
            mqtt_addr: addrs[0],
            mqtts_addr: addrs[1],
            ws_addr: addrs[2],
            wss_addr: addrs[3],
            accept,
            fd_watch,
            gates,
            _certs: certs,
            _security: installed,
        })
    }

    /// Connected MQTT clients now.
    pub fn connections(&self) -> isize {
        self.scx.connections.count()
    }

    /// Stops accepting new connections (the listening sockets close). Established
    /// connections keep being served until the process exits.
    pub fn stop_accepting(&self) {
        for g in &self.gates {
            g.stop();
        }
        self.accept.abort();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.fd_watch.abort();
    }
}

/// A broker listener on a free loopback port that expects a PROXY header from the gate.
fn internal_listener(
    opts: &BrokerOptions,
    name: &str,
    ws: bool,
) -> anyhow::Result<(Listener, SocketAddr)> {
    let bound = listener(opts, name, SocketAddr::from(([127, 0, 0, 1], 0)))
        .proxy_protocol(true)
        .bind()
        .with_context(|| format!("cannot open the broker's {name} listener on loopback"))?;
    let addr = bound.local_addr().context("internal listener address")?;
    let l = if ws { bound.ws() } else { bound.tcp() }
        .with_context(|| format!("broker listener {name}"))?;
    Ok((l, addr))
}

fn listener(opts: &BrokerOptions, name: &str, addr: SocketAddr) -> Builder {
    Builder::new()
        .name(name)
        .laddr(addr)
        .allow_anonymous(opts.allow_anonymous)
        .max_packet_size(opts.max_packet_size)
        .handshake_timeout(opts.handshake_timeout)
        .max_connections(opts.max_connections)
        .max_handshaking_limit(1000)
        .allow_zero_keepalive(true)
        .nodelay(true)
        // A restart right after a crash must rebind while old connections sit in TIME_WAIT.
        .reuseaddr(Some(true))
}
