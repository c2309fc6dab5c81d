//! The shutdown signal, one small type handed to every task (broker, writer, HTTP).
//!
//! SIGTERM or SIGINT starts a drain: the broker stops accepting connections and publishes,
//! the WAL is synced, the writer flushes what it can before the deadline, and the process
//! exits 0. What did not reach the database stays in the WAL for the next start.

use tokio_util::sync::CancellationToken;

/// Cloneable handle: `trigger()` once, every clone's `wait()` then returns.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the drain (idempotent).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the drain has started.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Triggers on SIGTERM or SIGINT (Ctrl-C).
    pub fn trigger_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received: draining"),
                _ = int.recv() => tracing::info!("SIGINT received: draining"),
            }
            this.trigger();
        });
        Ok(())
    }
}
