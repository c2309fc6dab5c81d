//! The broker is killed (SIGKILL) and restarted mid-run: the fleet reconnects, resends what
//! was not acknowledged, and every generated point is eventually acknowledged exactly once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::Mosquitto;
use fleet::{Fleet, FleetConfig};

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_survives_broker_kill_and_restart() {
    let mut broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 10;
    cfg.rate_per_device = 20.0;
    cfg.max_points = Some(120); // 6 s of points per device
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(500);
    cfg.keep_alive = Duration::from_secs(5);
    let f = Fleet::start(cfg).unwrap();
    let stats = f.stats();

    wait_for("some acks", Duration::from_secs(10), || {
        stats.acked_points() >= 100
    })
    .await;
    broker.kill();
    let acked_at_kill = stats.acked_points();
    wait_for("devices to notice", Duration::from_secs(10), || {
        stats.connected() == 0
    })
    .await;
    // Points keep being generated while the broker is down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = stats.snapshot();
    assert!(during.generated > acked_at_kill + 100, "{during:?}");
    assert!(
        during.acked_points <= acked_at_kill + 10 * 10,
        "nothing new is acked while the broker is down beyond what was already in the socket: {during:?}"
    );

    broker.restart();
    f.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let s = stats.snapshot();
    assert!(s.reconnects >= 10, "every device reconnected: {s:?}");
    assert!(s.errors >= 10, "{s:?}");

    let report = f.stop(Duration::from_secs(5)).await;
    assert_eq!(report.generated, 1200);
    assert_eq!(report.acked.len(), 1200);
    assert!(report.unacked.is_empty());
    let unique: HashSet<_> = report.acked.iter().collect();
    assert_eq!(unique.len(), 1200, "no point counted twice");
    // One point per message normally; the outage backlog went out several per message.
    assert!(
        report.published_points > report.published,
        "backlog flushed as arrays: {} points in {} messages",
        report.published_points,
        report.published
    );
    // Per device, 120 distinct strictly increasing times.
    for d in 0..10 {
        let id = format!("sim-{d:06}");
        let mut t: Vec<i64> = report
            .acked
            .iter()
            .filter(|p| p.device_id == id)
            .map(|p| p.time_ms)
            .collect();
        assert_eq!(t.len(), 120, "{id}");
        t.sort_unstable();
        t.dedup();
        assert_eq!(t.len(), 120, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_broker_is_down_reports_unacked_points() {
    let mut broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 4;
    cfg.rate_per_device = 50.0;
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(200);
    let f = Fleet::start(cfg).unwrap();
    let stats = f.stats();
    wait_for("some acks", Duration::from_secs(10), || {
        stats.acked_points() >= 20
    })
    .await;
    broker.kill();
    wait_for("disconnect", Duration::from_secs(10), || {
        stats.connected() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = f.stop(Duration::from_millis(500)).await;
    assert!(
        !report.unacked.is_empty(),
        "points generated during the outage are unacked"
    );
    assert_eq!(
        report.acked.len() + report.unacked.len(),
        report.generated as usize,
        "every generated point is in exactly one list"
    );
    let acked: HashSet<_> = report.acked.iter().collect();
    assert!(report.unacked.iter().all(|p| !acked.contains(p)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_delivers_the_backlog_when_the_broker_returns() {
    let mut broker = Mosquitto::start();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 3;
    cfg.rate_per_device = 100.0;
    cfg.points_per_message = 5;
    cfg.backlog_points_per_message = 20;
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(200);
    let f = Fleet::start(cfg).unwrap();
    let stats = f.stats();
    wait_for("some acks", Duration::from_secs(10), || {
        stats.acked_points() >= 50
    })
    .await;
    broker.kill();
    wait_for("disconnect", Duration::from_secs(10), || {
        stats.connected() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stop generating now; the broker comes back during the drain.
    let stopping = tokio::spawn(f.stop(Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.restart();
    let report = stopping.await.unwrap();
    assert!(
        report.unacked.is_empty(),
        "{} unacked",
        report.unacked.len()
    );
    assert_eq!(report.acked.len(), report.generated as usize);
    let unique: HashSet<_> = report.acked.iter().collect();
    assert_eq!(unique.len(), report.acked.len());
}
