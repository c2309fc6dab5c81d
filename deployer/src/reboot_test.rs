//! The reboot test's verdict: every position acknowledged by a PUBACK must be in the
//! database after the reboot, once. Pure comparison, queries and report; the command drives
//! the publishing (the simulated fleet locally, the probe device on a deployed env), the
//! reboot and the queries.

use std::collections::{BTreeMap, BTreeSet};

use fleet::AckedPoint;

/// How many points of each kind the summary lists.
const LISTED: usize = 10;

/// The outcome of comparing the acknowledgements with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Distinct points that got a PUBACK.
    pub acked: usize,
    /// Of those, points acknowledged after the reboot began (the service came back).
    pub acked_after: usize,
    /// Acknowledged points found in the database.
    pub found: usize,
    /// Acknowledged points absent from the database: data loss.
    pub missing: Vec<AckedPoint>,
    /// Points stored more than once, with their number of rows (the unique key should make
    /// this impossible).
    pub duplicates: Vec<(AckedPoint, u64)>,
    /// Rows stored without an acknowledgement reaching the publisher (the PUBACK was lost in
    /// the outage): harmless, the tracker would resend and the unique key absorbs it.
    pub stored_unacked: usize,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.acked > 0
            && self.acked_after > 0
            && self.missing.is_empty()
            && self.duplicates.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} acknowledged ({} after the reboot began), {} found, {} missing, {} duplicates, {} stored without a PUBACK",
            if self.passed() { "PASS" } else { "FAIL" },
            self.acked,
            self.acked_after,
            self.found,
            self.missing.len(),
            self.duplicates.len(),
            self.stored_unacked
        );
        if self.acked == 0 {
            s.push_str(" (nothing was acknowledged: the publisher never reached the broker)");
        } else if self.acked_after == 0 {
            s.push_str(" (nothing was acknowledged after the reboot began: the broker did not come back for MQTT)");
        }
        for p in self.missing.iter().take(LISTED) {
            s.push_str(&format!("\n  missing: {} at {} ms", p.device_id, p.time_ms));
        }
        if self.missing.len() > LISTED {
            s.push_str(&format!(
                "\n  ... and {} more missing",
                self.missing.len() - LISTED
            ));
        }
        for (p, n) in self.duplicates.iter().take(LISTED) {
            s.push_str(&format!(
                "\n  duplicate: {} at {} ms stored {n} times",
                p.device_id, p.time_ms
            ));
        }
        if self.duplicates.len() > LISTED {
            s.push_str(&format!(
                "\n  ... and {} more duplicates",
                self.duplicates.len() - LISTED
            ));
        }
        s
    }
}

/// The database's rows of the test: each point and its number of rows.
pub type Stored = BTreeMap<AckedPoint, u64>;

/// Parses `device_id,time_ms,rows` lines (as psql -A -F , prints them).
pub fn parse_rows(lines: &[String]) -> Result<Stored, String> {
    let mut stored = Stored::new();
    for l in lines {
        let bad = || format!("unexpected row {l:?} (expected device,time_ms,rows)");
        let mut parts = l.rsplitn(3, ',');
        let (Some(n), Some(t), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let time_ms = t.trim().parse().map_err(|_| bad())?;
        let rows: u64 = n.trim().parse().map_err(|_| bad())?;
        *stored
            .entry(AckedPoint {
                device_id: d.trim().to_owned(),
                time_ms,
            })
            .or_default() += rows;
    }
    Ok(stored)
}

/// Compares the acknowledged points with the stored ones; `acked_before` is how many were
/// acknowledged when the reboot began.
pub fn compare(acked: &[AckedPoint], db: &Stored, acked_before: usize) -> Verdict {
    let acked_set: BTreeSet<&AckedPoint> = acked.iter().collect();
    let missing: Vec<AckedPoint> = acked_set
        .iter()
        .filter(|p| !db.contains_key(**p))
        .map(|p| (*p).clone())
        .collect();
    Verdict {
        acked: acked_set.len(),
        acked_after: acked_set.len().saturating_sub(acked_before),
        found: acked_set.len() - missing.len(),
        duplicates: db
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(p, n)| (p.clone(), *n))
            .collect(),
        stored_unacked: db.keys().filter(|p| !acked_set.contains(p)).count(),
        missing,
    }
}

/// The simulated fleet's rows: its devices share a prefix.
pub fn rows_sql(prefix: &str) -> String {
    let safe: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!(
        "SELECT device_id, (extract(epoch from time)*1000)::bigint, count(*) FROM positions \
         WHERE device_id LIKE '{safe}%' GROUP BY 1, 2 ORDER BY 1, 2;"
    )
}

/// The probe device's rows between the run's first and last point (epoch ms, inclusive).
pub fn probe_rows_sql(device: &str, first_ms: i64, last_ms: i64) -> String {
    format!(
        "SELECT device_id, (extract(epoch from time)*1000)::bigint, count(*) FROM positions \
         WHERE device_id = '{}' AND time BETWEEN timestamptz 'epoch' + {first_ms} * interval '1 millisecond' \
         AND timestamptz 'epoch' + {last_ms} * interval '1 millisecond' GROUP BY 1, 2 ORDER BY 2;",
        device.replace('\'', "''")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(d: &str, t: i64) -> AckedPoint {
        AckedPoint {
            device_id: d.into(),
            time_ms: t,
        }
    }

    #[test]
    fn verdicts() {
        let db = parse_rows(&[
            "reboot-1,100,1".into(),
            "reboot-1,200,1".into(),
            "reboot-2,100,1".into(),
        ])
        .unwrap();
        let v = compare(&[p("reboot-1", 100), p("reboot-2", 100)], &db, 1);
        assert!(v.passed(), "{}", v.summary());
        assert_eq!((v.acked, v.acked_after, v.found), (2, 1, 2));
        assert_eq!(v.stored_unacked, 1);
        assert!(v.summary().starts_with(
            "PASS: 2 acknowledged (1 after the reboot began), 2 found, 0 missing, 0 duplicates"
        ));
        let v = compare(&[p("reboot-1", 100), p("reboot-3", 5)], &db, 0);
        assert!(!v.passed());
        assert_eq!(v.missing, [p("reboot-3", 5)]);
        assert!(v.summary().contains("missing: reboot-3 at 5 ms"));
        assert!(
            !compare(&[], &db, 0).passed(),
            "nothing acked is not a pass"
        );
        let v = compare(&[p("reboot-1", 100)], &db, 1);
        assert!(!v.passed(), "nothing acked after the reboot is not a pass");
        assert!(v.summary().contains("did not come back"), "{}", v.summary());
    }

    #[test]
    fn duplicates_fail_and_are_listed() {
        let db = parse_rows(&["deployer-probe,7,2".into(), "deployer-probe,8,1".into()]).unwrap();
        let v = compare(&[p("deployer-probe", 7), p("deployer-probe", 8)], &db, 1);
        assert!(!v.passed());
        assert_eq!(v.duplicates, [(p("deployer-probe", 7), 2)]);
        assert!(v.summary().contains("1 duplicates"), "{}", v.summary());
        assert!(v
            .summary()
            .contains("duplicate: deployer-probe at 7 ms stored 2 times"));
    }

    #[test]
    fn many_missing_points_are_listed_briefly() {
        let acked: Vec<AckedPoint> = (0..25).map(|t| p("deployer-probe", t)).collect();
        let v = compare(&acked, &Stored::new(), 0);
        let s = v.summary();
        assert_eq!(s.matches("  missing:").count(), 10, "{s}");
        assert!(s.contains("... and 15 more missing"), "{s}");
    }

    #[test]
    fn broken_rows_are_errors() {
        assert!(parse_rows(&["no-comma".into()]).is_err());
        assert!(parse_rows(&["dev,1".into()]).is_err());
        assert!(parse_rows(&["dev,notanumber,1".into()]).is_err());
        assert!(parse_rows(&["dev,1,many".into()]).is_err());
    }

    #[test]
    fn queries_cannot_be_injected() {
        assert!(rows_sql("reboot-1'; DROP TABLE x; --").contains("LIKE 'reboot-1DROPTABLEx--%'"));
        let sql = probe_rows_sql("o'brien", 1_000, 2_000);
        assert!(sql.contains("device_id = 'o''brien'"), "{sql}");
        assert!(
            sql.contains("BETWEEN timestamptz 'epoch' + 1000 * interval '1 millisecond'"),
            "{sql}"
        );
    }
}
