//! The embedded MQTT broker (rmqtt in library mode, on our tokio runtime): listeners, the
//! plugins we rely on (shared subscriptions for the backend replicas, retained messages), and
//! the hooks that tie it to the WAL (see `publish`).

pub mod acl;
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
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use tokio::task::JoinHandle;

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
    tls: Option<tls::TlsListeners>,
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
                    health,
                    trust_topic_identity: opts.allow_anonymous,
                }),
            )
            .await;
        let installed = security::install(
            &scx,
            register.as_ref(),
            &opts.security,
            opts.allow_anonymous,
        )
        .await;
        register.start().await;

        let mut server = MqttServer::new(scx.clone());
        let mut mqtt_addr = None;
        let mut ws_addr = None;
        let mut next_id = 1u16;
        if let Some(addr) = opts.mqtt_listen {
            let listener = listener(opts, "external/tcp", addr)
                .bind()
                .with_context(|| format!("cannot listen for MQTT on {addr}: is the port free?"))?;
            mqtt_addr = Some(listener.local_addr().context("MQTT listener address")?);
            server = server.listener_by_id(listener.tcp().context("MQTT TCP listener")?, next_id);
            next_id += 1;
        }
        if let Some(addr) = opts.ws_listen {
            let listener = listener(opts, "external/ws", addr)
                .bind()
                .with_context(|| {
                    format!("cannot listen for MQTT over WebSocket on {addr}: is the port free?")
                })?;
            ws_addr = Some(
                listener
                    .local_addr()
                    .context("WebSocket listener address")?,
            );
            server =
                server.listener_by_id(listener.ws().context("MQTT WebSocket listener")?, next_id);
            next_id += 1;
        }
        let tls = match (&opts.security.tls, opts.mqtts_listen.or(opts.wss_listen)) {
            (Some(files), Some(_)) => Some(tls::start(
                &scx,
                opts,
                files,
                opts.mqtts_listen,
                opts.wss_listen,
                next_id,
            )?),
            (None, Some(_)) => anyhow::bail!(
                "MQTT over TLS/WSS needs a certificate and key (--tls-cert, --tls-key)"
            ),
            _ => None,
        };
        let (mqtts_addr, wss_addr) = tls
            .as_ref()
            .map(|t| (t.mqtts_addr, t.wss_addr))
            .unwrap_or((None, None));
        let server = server.build();
        let accept = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "MQTT server stopped");
            }
        });
        Ok(Broker {
            scx,
            mqtt_addr,
            ws_addr,
            mqtts_addr,
            wss_addr,
            accept,
            tls,
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
        self.accept.abort();
        if let Some(t) = &self.tls {
            t.stop();
        }
    }
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
