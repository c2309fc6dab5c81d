//! A plausible random walk for one tracker: speed 0-30 m/s, smooth heading changes, staying
//! within a radius of a centre, with battery, accuracy and satellites that drift.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::position::Position;

/// Metres per degree of latitude (spherical Earth, good enough for a simulation).
const M_PER_DEG_LAT: f64 = 111_320.0;
/// Fastest simulated speed, m/s.
pub const MAX_SPEED: f64 = 30.0;

/// The moving state of one simulated tracker.
#[derive(Debug)]
pub struct Walk {
    rng: SmallRng,
    centre: (f64, f64),
    radius_m: f64,
    lat: f64,
    lon: f64,
    alt: f64,
    speed: f64,
    heading: f64,
    battery: f64,
    last_time: Option<i64>,
}

impl Walk {
    /// A tracker somewhere within `radius_m / 2` of `centre`; `seed` fixes the whole track.
    pub fn new(seed: u64, centre: (f64, f64), radius_m: f64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let r = rng.random_range(0.0..radius_m / 2.0);
        let bearing = rng.random_range(0.0..std::f64::consts::TAU);
        let (lat, lon) = offset(centre, r * bearing.cos(), r * bearing.sin());
        Walk {
            centre,
            radius_m,
            lat,
            lon,
            alt: rng.random_range(20.0..120.0),
            speed: rng.random_range(0.0..MAX_SPEED),
            heading: rng.random_range(0.0..360.0),
            battery: rng.random_range(40.0..100.0),
            last_time: None,
            rng,
        }
    }

    /// Moves the tracker to `time_ms` and returns its fix. Call with increasing times.
    pub fn step(&mut self, time_ms: i64) -> Position {
        let dt = match self.last_time {
            Some(t) => ((time_ms - t).max(0) as f64 / 1000.0).min(600.0),
            None => 0.0,
        };
        self.last_time = Some(time_ms);
        if dt > 0.0 {
            self.speed = (self.speed + self.rng.random_range(-2.0..2.0)).clamp(0.0, MAX_SPEED);
            self.heading += self.rng.random_range(-20.0..20.0);
            let (north, east) = metres_from(self.centre, self.lat, self.lon);
            if (north * north + east * east).sqrt() > self.radius_m {
                // Head back towards the centre.
                self.heading = (-east).atan2(-north).to_degrees();
            }
            self.heading = self.heading.rem_euclid(360.0);
            let d = self.speed * dt;
            let h = self.heading.to_radians();
            (self.lat, self.lon) = offset((self.lat, self.lon), d * h.cos(), d * h.sin());
            self.alt = (self.alt + self.rng.random_range(-0.5..0.5)).clamp(0.0, 500.0);
            self.battery -= dt * 0.001;
            if self.battery < 5.0 {
                self.battery = 100.0; // recharged
            }
        }
        Position {
            time: time_ms,
            lat: round(self.lat, 1e7),
            lon: round(self.lon, 1e7),
            alt: round(self.alt, 10.0),
            speed: round(self.speed, 100.0),
            heading: round(self.heading, 10.0).rem_euclid(360.0),
            accuracy: round(self.rng.random_range(2.5..15.0), 10.0),
            satellites: self.rng.random_range(4..=14),
            battery: round(self.battery, 10.0),
        }
    }
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// `origin` moved by `north`/`east` metres.
fn offset(origin: (f64, f64), north: f64, east: f64) -> (f64, f64) {
    let lat = origin.0 + north / M_PER_DEG_LAT;
    let lon = origin.1 + east / (M_PER_DEG_LAT * origin.0.to_radians().cos());
    (lat, lon)
}

/// (north, east) metres of (lat, lon) from `origin`.
fn metres_from(origin: (f64, f64), lat: f64, lon: f64) -> (f64, f64) {
    let north = (lat - origin.0) * M_PER_DEG_LAT;
    let east = (lon - origin.1) * M_PER_DEG_LAT * origin.0.to_radians().cos();
    (north, east)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_stays_plausible_for_a_day() {
        let centre = (48.8566, 2.3522);
        let mut w = Walk::new(7, centre, 20_000.0);
        let mut prev: Option<Position> = None;
        for i in 0..86_400i64 {
            let p = w.step(1_700_000_000_000 + i * 1000);
            assert!((0.0..=MAX_SPEED).contains(&p.speed), "{p:?}");
            assert!((0.0..360.0).contains(&p.heading), "{p:?}");
            assert!((4..=14).contains(&p.satellites));
            assert!((0.0..=100.0).contains(&p.battery));
            let (n, e) = metres_from(centre, p.lat, p.lon);
            // radius plus what one can overshoot before turning back
            assert!(
                (n * n + e * e).sqrt() < 20_000.0 + 40.0 * MAX_SPEED,
                "{p:?}"
            );
            if let Some(q) = prev {
                let (n, e) = metres_from((q.lat, q.lon), p.lat, p.lon);
                assert!(
                    (n * n + e * e).sqrt() <= MAX_SPEED * 1.0 + 1.0,
                    "jump {q:?} -> {p:?}"
                );
            }
            prev = Some(p);
        }
    }

    #[test]
    fn same_seed_same_track_other_seed_other_track() {
        let c = (48.8566, 2.3522);
        let (mut a, mut b, mut d) = (
            Walk::new(1, c, 1e4),
            Walk::new(1, c, 1e4),
            Walk::new(2, c, 1e4),
        );
        for t in 0..100 {
            assert_eq!(a.step(t * 1000), b.step(t * 1000));
        }
        assert_ne!(a.step(100_000), d.step(100_000));
    }
}
