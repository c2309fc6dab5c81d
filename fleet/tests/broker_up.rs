//! Against a real mosquitto that stays up: every generated point is acknowledged, once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::Mosquitto;
use fleet::{Fleet, FleetConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_is_acked_when_the_broker_is_up() {
    let broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 20;
    cfg.rate_per_device = 50.0;
    cfg.max_points = Some(40);
    cfg.ramp_up = Duration::from_millis(200);
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let stats = f.stats().snapshot();
    assert_eq!(stats.connected, 20);
    let report = f.stop(Duration::from_secs(5)).await;
    assert_eq!(report.acked.len(), 800);
    assert!(report.unacked.is_empty(), "{:?}", report.unacked);
    assert_eq!(report.generated, 800);
    assert_eq!(report.published_points, 800, "nothing was resent");
    assert_eq!(report.resent, 0);
    assert_eq!(report.reconnects, 0);
    // One point per message, except points generated before a device's first CONNACK,
    // which go out together as a backlog.
    assert!(
        report.published <= 800 && report.published >= 700,
        "{}",
        report.published
    );
    let unique: HashSet<_> = report.acked.iter().collect();
    assert_eq!(unique.len(), 800, "no duplicates");
    let devices: HashSet<_> = report.acked.iter().map(|p| p.device_id.as_str()).collect();
    assert_eq!(devices.len(), 20);
    assert!(devices.contains("sim-000000") && devices.contains("sim-000019"));
    // One latency sample per acknowledged message.
    assert_eq!(report.latency.count, report.stats.acked_messages);
    assert_eq!(report.stats.acked_messages, report.published);
    assert!(report.latency_p99_ms > 0.0);
    assert_eq!(report.stats.connected, 0, "all disconnected after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_carry_several_points_per_message() {
    let broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 3;
    cfg.first_index = 500;
    cfg.prefix = "batch-".into();
    cfg.rate_per_device = 200.0;
    cfg.points_per_message = 10;
    cfg.max_points = Some(95);
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let report = f.stop(Duration::from_secs(5)).await;
    assert_eq!(report.acked.len(), 285);
    assert!(report.unacked.is_empty());
    // Per device: 9 full messages + 1 partial of 5 when it connects at once; the points
    // generated before its first CONNACK go out as one backlog message (up to 50 points),
    // so a slow connect means fewer, larger messages, never more.
    assert!((6..=33).contains(&report.published), "{}", report.published);
    assert_eq!(report.published_points, 285);
    assert!(report
        .acked
        .iter()
        .all(|p| p.device_id.starts_with("batch-000")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_devices_each_on_its_own_connection() {
    let broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 300;
    cfg.rate_per_device = 10.0;
    cfg.max_points = Some(5);
    cfg.ramp_up = Duration::from_millis(300);
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(60)).await.unwrap();
    let s = f.stats().snapshot();
    assert_eq!(s.connected, 300);
    assert_eq!(s.connects, 300, "one connection per device, none lost");
    let report = f.stop(Duration::from_secs(10)).await;
    assert_eq!(report.acked.len(), 1500);
    let devices: HashSet<_> = report.acked.iter().map(|p| p.device_id.as_str()).collect();
    assert_eq!(devices.len(), 300);
    assert!(
        report
            .acked
            .windows(2)
            .all(|w| w[0].device_id != w[1].device_id || w[0].time_ms < w[1].time_ms),
        "grouped by device, in time order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_fleet_ends_every_device() {
    let broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 5;
    cfg.rate_per_device = 20.0;
    let f = Fleet::start(cfg).unwrap();
    let stats = f.stats();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stats.connected() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "devices did not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(f);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stats.connected() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "devices still connected after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generated = stats.snapshot().generated;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stats.snapshot().generated,
        generated,
        "nothing generated after drop"
    );
}
