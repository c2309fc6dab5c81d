//! The reboot test's verdict: every position the fleet saw acknowledged must be in the
//! database after the reboot. Pure comparison and report; the command drives the fleet,
//! the reboot and the queries.

use std::collections::BTreeSet;

use fleet::AckedPoint;

/// The outcome of comparing the fleet's acknowledgements with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Points the fleet got a PUBACK for.
    pub acked: usize,
    /// Rows in the database for the test's devices.
    pub in_db: usize,
    /// Acknowledged points absent from the database: data loss.
    pub missing: Vec<AckedPoint>,
    /// Rows stored without an acknowledgement reaching the fleet (the PUBACK was lost in the
    /// outage): harmless, the tracker would resend and the unique key absorbs it.
    pub stored_unacked: usize,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.acked > 0 && self.missing.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} acknowledged, {} in the database, {} missing, {} stored without a PUBACK",
            if self.passed() { "PASS" } else { "FAIL" },
            self.acked,
            self.in_db,
            self.missing.len(),
            self.stored_unacked
        );
        if self.acked == 0 {
            s.push_str(" (nothing was acknowledged: the fleet never reached the broker)");
        }
        for p in self.missing.iter().take(10) {
            s.push_str(&format!("\n  missing: {} at {} ms", p.device_id, p.time_ms));
        }
        if self.missing.len() > 10 {
            s.push_str(&format!("\n  ... and {} more", self.missing.len() - 10));
        }
        s
    }
}

/// Parses `device_id,time_ms` rows (as psql -A -F , prints them).
pub fn parse_rows(lines: &[String]) -> Result<BTreeSet<AckedPoint>, String> {
    lines
        .iter()
        .map(|l| {
            let (d, t) = l
                .rsplit_once(',')
                .ok_or_else(|| format!("unexpected row {l:?}"))?;
            let time_ms = t
                .trim()
                .parse()
                .map_err(|_| format!("unexpected time in row {l:?}"))?;
            Ok(AckedPoint {
                device_id: d.trim().to_owned(),
                time_ms,
            })
        })
        .collect()
}

pub fn compare(acked: &[AckedPoint], db: &BTreeSet<AckedPoint>) -> Verdict {
    let acked_set: BTreeSet<&AckedPoint> = acked.iter().collect();
    let missing: Vec<AckedPoint> = acked_set
        .iter()
        .filter(|p| !db.contains(**p))
        .map(|p| (*p).clone())
        .collect();
    Verdict {
        acked: acked_set.len(),
        in_db: db.len(),
        stored_unacked: db.iter().filter(|p| !acked_set.contains(p)).count(),
        missing,
    }
}

/// The query that lists the test's rows.
pub fn rows_sql(prefix: &str) -> String {
    let safe: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!(
        "SELECT device_id, (extract(epoch from time)*1000)::bigint FROM positions WHERE device_id LIKE '{safe}%' ORDER BY 1, 2;"
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
            "reboot-1,100".into(),
            "reboot-1,200".into(),
            "reboot-2,100".into(),
        ])
        .unwrap();
        let v = compare(&[p("reboot-1", 100), p("reboot-2", 100)], &db);
        assert!(v.passed(), "{}", v.summary());
        assert_eq!(v.stored_unacked, 1);
        let v = compare(&[p("reboot-1", 100), p("reboot-3", 5)], &db);
        assert!(!v.passed());
        assert_eq!(v.missing, [p("reboot-3", 5)]);
        assert!(v.summary().contains("missing: reboot-3 at 5 ms"));
        assert!(!compare(&[], &db).passed(), "nothing acked is not a pass");
    }

    #[test]
    fn broken_rows_are_errors() {
        assert!(parse_rows(&["no-comma".into()]).is_err());
        assert!(parse_rows(&["dev,notanumber".into()]).is_err());
    }

    #[test]
    fn prefix_cannot_inject_sql() {
        assert!(rows_sql("reboot-1'; DROP TABLE x; --").contains("LIKE 'reboot-1DROPTABLEx--%'"));
    }
}
