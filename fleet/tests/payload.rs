//! A separate MQTT subscriber (rumqttc) sees exactly the ingest's payload format on
//! `devices/{id}/positions`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Mosquitto;
use fleet::{Fleet, FleetConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

/// Subscribes to every device topic and collects (topic, payload) until `n` messages.
async fn subscribe(port: u16) -> (AsyncClient, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let (client, mut el) = AsyncClient::new(MqttOptions::new("watcher", "127.0.0.1", port), 100);
    client
        .subscribe("devices/+/positions", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(10_000);
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = subscribed_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx
                        .send((p.topic.clone(), p.payload.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    subscribed_rx.await.unwrap();
    (client, rx)
}

fn check_point(v: &Value, centre: (f64, f64)) -> i64 {
    let o = v.as_object().expect("each point is a JSON object");
    let keys: Vec<&str> = {
        let mut k: Vec<&str> = o.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    };
    assert_eq!(
        keys,
        [
            "accuracy",
            "alt",
            "battery",
            "heading",
            "lat",
            "lon",
            "satellites",
            "speed",
            "time"
        ]
    );
    let f = |k: &str| {
        o[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is a number: {v}"))
    };
    assert!(
        (f("lat") - centre.0).abs() < 0.5 && (f("lon") - centre.1).abs() < 0.5,
        "{v}"
    );
    assert!((0.0..=30.0).contains(&f("speed")), "{v}");
    assert!((0.0..360.0).contains(&f("heading")), "{v}");
    assert!(f("accuracy") > 0.0 && (0.0..=100.0).contains(&f("battery")));
    assert!(o["satellites"].is_u64(), "satellites is an integer: {v}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = o["time"].as_i64().expect("time is integer epoch ms");
    assert!(
        (now_ms - 60_000..=now_ms + 1_000).contains(&t),
        "time {t} is near now ({now_ms})"
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_sees_single_objects_and_arrays() {
    let broker = Mosquitto::start();
    let (_sub, mut rx) = subscribe(broker.port).await;

    // Single-object messages, custom centre (Lyon).
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 2;
    // Slow enough that most points are generated after CONNACK (points generated before it
    // go out together as one backlog array).
    cfg.rate_per_device = 10.0;
    cfg.max_points = Some(10);
    cfg.centre = (45.764, 4.8357);
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(20)).await.unwrap();
    let report = f.stop(Duration::from_secs(5)).await;

    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    let mut objects = 0;
    while seen.values().map(Vec::len).sum::<usize>() < 20 {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("subscriber got every message")
            .unwrap();
        let v: Value = serde_json::from_slice(&payload).expect("payload is JSON");
        let id = topic
            .strip_prefix("devices/")
            .and_then(|t| t.strip_suffix("/positions"))
            .expect("topic devices/{id}/positions")
            .to_string();
        let points = match &v {
            Value::Array(a) => a.clone(),
            _ => {
                objects += 1;
                vec![v.clone()]
            }
        };
        for p in &points {
            seen.entry(id.clone())
                .or_default()
                .push(check_point(p, (45.764, 4.8357)));
        }
    }
    assert!(
        objects > 0,
        "one point per message is sent as a single object"
    );
    assert_eq!(seen.len(), 2);
    for (id, times) in &seen {
        assert!(id == "sim-000000" || id == "sim-000001", "{id}");
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing: {times:?}"
        );
    }
    // The subscriber saw exactly what the fleet says was acknowledged.
    let mut acked: Vec<(String, i64)> = report
        .acked
        .iter()
        .map(|p| (p.device_id.clone(), p.time_ms))
        .collect();
    let mut got: Vec<(String, i64)> = seen
        .iter()
        .flat_map(|(id, ts)| ts.iter().map(move |t| (id.clone(), *t)))
        .collect();
    acked.sort();
    got.sort();
    assert_eq!(acked, got);

    // Batched messages are JSON arrays of the same objects.
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 1;
    cfg.first_index = 42;
    cfg.rate_per_device = 50.0;
    cfg.points_per_message = 4;
    cfg.max_points = Some(40);
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(20)).await.unwrap();
    f.stop(Duration::from_secs(5)).await;
    let mut n = 0;
    let mut arrays = 0;
    while n < 40 {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("subscriber got every batch")
            .unwrap();
        assert_eq!(topic, "devices/sim-000042/positions");
        match serde_json::from_slice::<Value>(&payload).unwrap() {
            Value::Array(a) => {
                arrays += 1;
                assert!((2..=50).contains(&a.len()), "array of {}", a.len());
                for p in &a {
                    check_point(p, (48.8566, 2.3522));
                }
                n += a.len();
            }
            v => {
                check_point(&v, (48.8566, 2.3522));
                n += 1;
            }
        }
    }
    assert_eq!(n, 40);
    assert!(arrays >= 1, "batches of 4 are arrays ({arrays})");
}
