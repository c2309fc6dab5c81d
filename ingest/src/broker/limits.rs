//! Connection and message limits the broker enforces on top of rmqtt: the number of connected
//! clients, the rate of new logins, and the message rate of each account. Every refusal is
//! counted in `ingest_mqtt_limit_refusals_total{limit}`.
//!
//! (The payload size limit is the listener's `max_packet_size` plus the decoder's
//! `max_payload_bytes`; the handshake timeout is the listener's.)

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::metrics as m;

/// Limit settings; 0 turns a rate limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOptions {
    /// Most MQTT clients connected at once.
    pub max_connections: usize,
    /// New logins per second (all clients together), with a burst of the same size.
    pub connection_rate: u32,
    /// Messages per second per account.
    pub device_message_rate: u32,
    /// Messages an account may send at once above its rate (offline buffer flushes).
    pub device_message_burst: u32,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            max_connections: 100_000,
            connection_rate: 1_000,
            device_message_rate: 50,
            device_message_burst: 500,
        }
    }
}

/// Why a login or a message was refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections,
    ConnectionRate,
    MessageRate,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "max_connections",
            Refusal::ConnectionRate => "connection_rate",
            Refusal::MessageRate => "device_message_rate",
        }
    }

    fn count(self) {
        metrics::counter!(m::LIMIT_REFUSALS, "limit" => self.as_str()).increment(1);
    }
}

/// The limiters, shared by the hooks.
pub struct Limits {
    max_connections: usize,
    logins: Option<DefaultDirectRateLimiter>,
    messages: Option<DefaultKeyedRateLimiter<String>>,
}

impl Limits {
    pub fn new(opts: &LimitOptions) -> Limits {
        let logins = NonZeroU32::new(opts.connection_rate)
            .map(|r| RateLimiter::direct(Quota::per_second(r)));
        let messages = NonZeroU32::new(opts.device_message_rate).map(|r| {
            let burst = NonZeroU32::new(opts.device_message_burst)
                .unwrap_or(r)
                .max(r);
            RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
        });
        Limits {
            max_connections: opts.max_connections,
            logins,
            messages,
        }
    }

    /// Checks a new login, given the number of clients connected now.
    pub fn check_login(&self, connected: usize) -> Result<(), Refusal> {
        let result = if self.max_connections > 0 && connected >= self.max_connections {
            Err(Refusal::TooManyConnections)
        } else if self.logins.as_ref().is_some_and(|l| l.check().is_err()) {
            Err(Refusal::ConnectionRate)
        } else {
            Ok(())
        };
        if let Err(r) = result {
            r.count();
        }
        result
    }

    /// Checks one message of `account`.
    pub fn check_message(&self, account: &str) -> Result<(), Refusal> {
        let Some(limiter) = &self.messages else {
            return Ok(());
        };
        // Allocation only on the slow path would need a borrowed-key API governor lacks.
        if limiter.check_key(&account.to_owned()).is_err() {
            Refusal::MessageRate.count();
            return Err(Refusal::MessageRate);
        }
        Ok(())
    }

    /// Drops the per-account state of accounts idle long enough to be back at full burst.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.messages {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_count_and_rate_are_enforced() {
        let l = Limits::new(&LimitOptions {
            max_connections: 10,
            connection_rate: 3,
            ..LimitOptions::default()
        });
        assert_eq!(l.check_login(10), Err(Refusal::TooManyConnections));
        let ok = (0..10).filter(|_| l.check_login(0).is_ok()).count();
        assert_eq!(ok, 3, "a burst of the per-second rate, then refusals");
    }

    #[test]
    fn message_rate_is_per_account() {
        let l = Limits::new(&LimitOptions {
            device_message_rate: 1,
            device_message_burst: 2,
            ..LimitOptions::default()
        });
        assert!(l.check_message("a").is_ok());
        assert!(l.check_message("a").is_ok());
        assert_eq!(l.check_message("a"), Err(Refusal::MessageRate));
        assert!(
            l.check_message("b").is_ok(),
            "another account has its own budget"
        );
        l.forget_idle();
    }

    #[test]
    fn zero_turns_rate_limits_off() {
        let l = Limits::new(&LimitOptions {
            max_connections: 0,
            connection_rate: 0,
            device_message_rate: 0,
            device_message_burst: 0,
        });
        assert!(
            (0..10_000).all(|_| l.check_login(1_000_000).is_ok() && l.check_message("a").is_ok())
        );
    }
}
