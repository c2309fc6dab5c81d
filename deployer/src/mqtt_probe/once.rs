//! `deployer verify`'s probe: log in, publish a few points one second apart at QoS 1, wait
//! for every PUBACK within the timeout, say goodbye.

use std::time::{SystemTime, UNIX_EPOCH};

use rumqttc::mqttbytes::v4::{Packet, Publish};
use rumqttc::mqttbytes::QoS;
use tokio::io::AsyncWriteExt;

use super::login::login;
use super::{topic, Endpoint, ProbeError};

/// Most points one probe publishes.
pub const MAX_POINTS: usize = 100;

/// What `verify` marks its points with (`attributes.probe`).
pub const VERIFY_MARK: &str = "deployer verify";

/// One probe run.
#[derive(Debug, Clone)]
pub struct Probe {
    pub endpoint: Endpoint,
    /// Points to publish, one message each.
    pub points: usize,
}

/// What the broker acknowledged: the probe's points by their time (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub times_ms: Vec<i64>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The probe's points: one second apart, ending a second ago (well inside the ingest's
/// accepted window, whatever small clock difference the operator's machine has).
pub fn point_times(points: usize, now_ms: i64) -> Vec<i64> {
    (0..points as i64)
        .map(|i| now_ms - 1_000 * (points as i64 - i))
        .collect()
}

/// One point of the project's JSON format, marked (`attributes.probe`) as the probe's.
pub fn payload(time_ms: i64, mark: &str) -> String {
    serde_json::json!({
        "time": time_ms,
        "lat": 48.8566,
        "lon": 2.3522,
        "attributes": { "probe": mark },
    })
    .to_string()
}

/// Connects, logs in, publishes and waits for every PUBACK; then disconnects.
pub async fn publish(p: &Probe) -> Result<Delivery, ProbeError> {
    if p.points == 0 || p.points > MAX_POINTS {
        return Err(ProbeError::Config(format!(
            "{} points: publish 1 to {MAX_POINTS}",
            p.points
        )));
    }
    let ep = &p.endpoint;
    let mut s = login(
        ep,
        format!("{}-verify-{}", ep.device_id, std::process::id()),
    )
    .await?;

    let times = point_times(p.points, now_ms());
    let topic = topic(&ep.device_id);
    for (i, t) in times.iter().enumerate() {
        let mut publish = Publish::new(topic.clone(), QoS::AtLeastOnce, payload(*t, VERIFY_MARK));
        publish.pkid = i as u16 + 1;
        s.wire.send(&mut s.io, Packet::Publish(publish)).await?;
    }
    let mut acked = vec![false; times.len()];
    while acked.iter().any(|a| !a) {
        let hint = format!(
            "{} of {} points acknowledged. The probe device may publish only to {topic}: is {:?} a device account? `deployer logs <env> ingest`",
            acked.iter().filter(|a| **a).count(),
            times.len(),
            ep.device_id
        );
        match s
            .wire
            .receive(
                &mut s.io,
                "before acknowledging every point",
                &hint,
                "PUBACK",
            )
            .await?
        {
            Packet::PubAck(ack) => {
                let i = usize::from(ack.pkid).wrapping_sub(1);
                match acked.get_mut(i) {
                    Some(a) => *a = true,
                    None => {
                        return Err(s
                            .wire
                            .protocol(format!("PUBACK for unknown packet {}", ack.pkid)))
                    }
                }
            }
            Packet::PingResp => {}
            other => return Err(s.wire.protocol(format!("expected PUBACK, got {other:?}"))),
        }
    }
    // A clean goodbye; the points are already acknowledged, so errors here do not matter.
    let _ = s.wire.send(&mut s.io, Packet::Disconnect).await;
    let _ = s.io.shutdown().await;
    Ok(Delivery { times_ms: times })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_distinct_past_and_in_order() {
        let t = point_times(3, 1_000_000);
        assert_eq!(t, vec![997_000, 998_000, 999_000]);
        let v: serde_json::Value = serde_json::from_str(&payload(5, VERIFY_MARK)).unwrap();
        assert_eq!(v["time"], 5);
        assert_eq!(v["attributes"]["probe"], "deployer verify");
    }
}
