//! The two kinds of accounts: a tracking device (publishes its own positions) and a service
//! (a consumer such as a backend replica: reads every position, sends commands).

use std::fmt;
use std::str::FromStr;

use super::error::AuthError;

/// Account kind, stored in `devices.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Device,
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::Service => "service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "device" => Ok(Kind::Device),
            "service" => Ok(Kind::Service),
            other => Err(AuthError::UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_is_refused() {
        for k in [Kind::Device, Kind::Service] {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        }
        assert!(matches!(
            "admin".parse::<Kind>(),
            Err(AuthError::UnknownKind(_))
        ));
    }
}
