//! The PROXY protocol (v2) header the gate sends the broker first on each connection, so the
//! broker sees the device's address rather than the gate's.

use std::net::{SocketAddr, SocketAddrV6};

use proxy_protocol::version2::{ProxyAddresses, ProxyCommand, ProxyTransportProtocol};
use proxy_protocol::ProxyHeader;

/// The header announcing a TCP connection from `client` to `local` (the public listener).
pub fn encode(
    client: SocketAddr,
    local: SocketAddr,
) -> Result<Vec<u8>, proxy_protocol::EncodeError> {
    let addresses = match (client, local) {
        (SocketAddr::V4(source), SocketAddr::V4(destination)) => ProxyAddresses::Ipv4 {
            source,
            destination,
        },
        (source, destination) => ProxyAddresses::Ipv6 {
            source: as_v6(source),
            destination: as_v6(destination),
        },
    };
    let bytes = proxy_protocol::encode(ProxyHeader::Version2 {
        command: ProxyCommand::Proxy,
        transport_protocol: ProxyTransportProtocol::Stream,
        addresses,
    })?;
    Ok(bytes.to_vec())
}

fn as_v6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V6(a) => a,
        SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(mut bytes: &[u8]) -> ProxyHeader {
        let h = proxy_protocol::parse(&mut bytes).unwrap();
        assert!(
            bytes.is_empty(),
            "the header is read whole, nothing after it"
        );
        h
    }

    #[test]
    fn ipv4_round_trip() {
        let client: SocketAddr = "203.0.113.7:51234".parse().unwrap();
        let local: SocketAddr = "10.0.0.2:1883".parse().unwrap();
        match decode(&encode(client, local).unwrap()) {
            ProxyHeader::Version2 {
                command: ProxyCommand::Proxy,
                transport_protocol: ProxyTransportProtocol::Stream,
                addresses:
                    ProxyAddresses::Ipv4 {
                        source,
                        destination,
                    },
            } => {
                assert_eq!(SocketAddr::V4(source), client);
                assert_eq!(SocketAddr::V4(destination), local);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mixed_families_become_ipv6() {
        let client: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let local: SocketAddr = "0.0.0.0:1883".parse().unwrap();
        match decode(&encode(client, local).unwrap()) {
            ProxyHeader::Version2 {
                addresses:
                    ProxyAddresses::Ipv6 {
                        source,
                        destination,
                    },
                ..
            } => {
                assert_eq!(SocketAddr::V6(source), client);
                assert_eq!(destination.port(), 1883);
                assert_eq!(destination.ip().to_ipv4_mapped(), Some([0, 0, 0, 0].into()));
            }
            other => panic!("{other:?}"),
        }
    }
}
