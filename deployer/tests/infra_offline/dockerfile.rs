//! compose/ingest.Dockerfile: the documented rules hadolint would otherwise cover.

use super::*;

/// Instructions with continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.starts_with('#') || t.is_empty()) {
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if let Some(stripped) = t.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

pub fn check(path: &Path) -> Vec<String> {
    let mut findings = Vec::new();
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("ingest.Dockerfile: cannot read: {e}")],
    };
    let ins = instructions(&text);
    let mut stages: Vec<String> = Vec::new();
    let mut last_stage_start = 0;
    for (i, (op, args)) in ins.iter().enumerate() {
        if op != "FROM" {
            continue;
        }
        last_stage_start = i;
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let image = words.first().copied().unwrap_or("");
        if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
            if let Some(n) = words.get(pos + 1) {
                stages.push(n.to_string());
            }
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        let pinned = image.contains("@sha256:")
            || last
                .split_once(':')
                .is_some_and(|(_, t)| !t.is_empty() && t != "latest");
        if !pinned && !stages.iter().any(|s| s == image) {
            findings.push(format!(
                "ingest.Dockerfile: base image {image:?} is not pinned to a tag (no latest)"
            ));
        }
    }
    let froms = ins.iter().filter(|(op, _)| op == "FROM").count();
    if froms < 2 {
        findings.push(format!(
            "ingest.Dockerfile: not multi-stage ({froms} FROM): build in one stage, run in a slim one"
        ));
    }
    if !ins
        .iter()
        .any(|(op, a)| op == "FROM" && a.starts_with("rust:1.95-slim-bookworm"))
    {
        findings.push("ingest.Dockerfile: the builder must be rust:1.95-slim-bookworm".into());
    }
    if !ins.iter().any(|(op, a)| {
        op == "RUN"
            && a.contains("cargo build")
            && a.contains("--release")
            && a.contains("-p ingest")
    }) {
        findings.push("ingest.Dockerfile: no `cargo build --release -p ingest`".into());
    }
    let final_stage = &ins[last_stage_start..];
    match final_stage.iter().rev().find(|(op, _)| op == "USER") {
        None => findings.push(
            "ingest.Dockerfile: the runtime stage has no USER: the ingest must not run as root"
                .into(),
        ),
        Some((_, u)) => {
            let user = u.split(':').next().unwrap_or("");
            if user == "root" || user == "0" {
                findings.push(format!(
                    "ingest.Dockerfile: runtime USER is {u}: must not be root"
                ));
            }
        }
    }
    match final_stage.iter().find(|(op, _)| op == "HEALTHCHECK") {
        None => findings.push("ingest.Dockerfile: no HEALTHCHECK in the runtime stage".into()),
        Some((_, h)) if !h.contains("healthcheck") => findings.push(format!(
            "ingest.Dockerfile: HEALTHCHECK {h:?} should run `ingest healthcheck`"
        )),
        Some(_) => {}
    }
    if final_stage
        .iter()
        .any(|(op, a)| op == "RUN" && (a.contains("curl") || a.contains("wget")))
    {
        findings.push("ingest.Dockerfile: the runtime stage installs curl/wget; the healthcheck needs neither".into());
    }
    if !final_stage
        .iter()
        .any(|(op, a)| op == "VOLUME" && a.contains("/var/lib/ingest/wal"))
    {
        findings.push("ingest.Dockerfile: no VOLUME for /var/lib/ingest/wal".into());
    }
    findings
}
