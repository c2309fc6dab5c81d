//! Bad settings are refused with an error that names the setting, before anything connects.

mod common;

use std::time::Duration;

use fleet::{ConfigError, Credentials, Fleet, FleetConfig};

fn start_err(f: impl FnOnce(&mut FleetConfig)) -> ConfigError {
    let mut cfg = FleetConfig::new("127.0.0.1", 1883);
    f(&mut cfg);
    match Fleet::start(cfg) {
        Ok(_) => panic!("a bad config was accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bad_settings_are_clear_errors() {
    let e = start_err(|c| c.devices = 0);
    assert_eq!(e, ConfigError::NoDevices);
    assert!(e.to_string().contains("at least 1 device"), "{e}");

    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 5000.0] {
        let e = start_err(|c| c.rate_per_device = rate);
        assert!(matches!(e, ConfigError::Rate(_)), "{rate}: {e:?}");
        assert!(e.to_string().contains("rate per device"), "{e}");
    }

    let e = start_err(|c| c.port = 0);
    assert_eq!(e, ConfigError::ZeroPort);
    assert!(e.to_string().contains("port"), "{e}");

    assert_eq!(start_err(|c| c.host = " ".into()), ConfigError::EmptyHost);
    let e = start_err(|c| c.points_per_message = 0);
    assert!(e.to_string().contains("points_per_message"), "{e}");
    assert!(matches!(
        start_err(|c| c.backlog_points_per_message = 100_000),
        ConfigError::PointsPerMessage { .. }
    ));
    assert_eq!(start_err(|c| c.max_inflight = 0), ConfigError::ZeroInflight);
    assert!(matches!(
        start_err(|c| c.keep_alive = Duration::from_millis(500)),
        ConfigError::KeepAlive(_)
    ));
    assert_eq!(
        start_err(|c| c.max_points = Some(0)),
        ConfigError::ZeroMaxPoints
    );
    assert!(matches!(
        start_err(|c| c.reconnect_max = Duration::from_millis(1)),
        ConfigError::Backoff { .. }
    ));
    assert!(matches!(
        start_err(|c| c.centre = (95.0, 0.0)),
        ConfigError::Centre { .. }
    ));
    assert!(matches!(
        start_err(|c| c.radius_m = -5.0),
        ConfigError::Radius(_)
    ));
    assert_eq!(
        start_err(|c| {
            c.first_index = usize::MAX;
            c.devices = 2
        }),
        ConfigError::IndexOverflow
    );
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let e = Fleet::start(FleetConfig::new("127.0.0.1", 1883))
        .err()
        .unwrap();
    assert_eq!(e, ConfigError::NoRuntime);
}

#[test]
fn passwords_never_show_in_debug_output() {
    let mut cfg = FleetConfig::new("127.0.0.1", 1883);
    cfg.credentials = Credentials::SharedPassword("hunter2-secret".into());
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("redacted"));
}
