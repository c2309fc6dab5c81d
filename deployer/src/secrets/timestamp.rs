//! `sops_lastmodified`: RFC 3339 timestamps, formatted like Go's `time.RFC3339` (whole
//! seconds, `Z` for UTC) because that exact text is the additional data of the MAC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Re-formats a stored timestamp the way sops does before using it as MAC additional data.
pub(crate) fn canonical(stored: &str) -> Result<String, String> {
    let t = OffsetDateTime::parse(stored, &Rfc3339)
        .map_err(|e| format!("`{stored}` is not an RFC 3339 timestamp ({e})"))?;
    format(t)
}

/// Now, in UTC, as sops writes it.
pub(crate) fn now() -> Result<String, String> {
    format(OffsetDateTime::now_utc())
}

fn format(t: OffsetDateTime) -> Result<String, String> {
    let base = t
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .map_err(|e| e.to_string())?;
    let offset = t.offset();
    if offset.is_utc() {
        return Ok(format!("{base}Z"));
    }
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    Ok(format!(
        "{base}{sign}{:02}:{:02}",
        h.unsigned_abs(),
        m.unsigned_abs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical("2026-11-27T08:10:41Z").unwrap(),
            "2026-11-27T08:10:41Z"
        );
        assert_eq!(
            canonical("2026-11-27T08:10:41.123Z").unwrap(),
            "2026-11-27T08:10:41Z"
        );
        assert_eq!(
            canonical("2026-11-27T08:10:41+00:00").unwrap(),
            "2026-11-27T08:10:41Z"
        );
        assert_eq!(
            canonical("2026-11-27T08:10:41-05:30").unwrap(),
            "2026-11-27T08:10:41-05:30"
        );
        assert!(canonical("yesterday").is_err());
        assert!(now().unwrap().ends_with('Z'));
    }
}
