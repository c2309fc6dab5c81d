//! compose/powersync: config and sync rules.

use super::*;
use serde_norway::Value;

fn env_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Tagged(t) => {
            if t.tag == "env" {
                if let Value::String(s) = &t.value {
                    out.push(s.clone());
                }
            }
            env_refs(&t.value, out);
        }
        Value::Sequence(s) => s.iter().for_each(|i| env_refs(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| env_refs(i, out)),
        _ => {}
    }
}

pub fn check(dir: &Path, compose_file: &Path) -> Vec<String> {
    let mut findings = Vec::new();
    let config: Value = match fs::read_to_string(dir.join("config.yaml"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_norway::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return vec![format!("powersync/config.yaml: {e}")],
    };
    let mut refs = Vec::new();
    env_refs(&config, &mut refs);
    let compose: serde_json::Value = fs::read_to_string(compose_file)
        .ok()
        .and_then(|t| serde_norway::from_str(&t).ok())
        .unwrap_or_default();
    let ps_env = compose["services"]["powersync"]["environment"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for r in &refs {
        if !r.starts_with("PS_") {
            findings.push(format!(
                "powersync/config.yaml: !env {r}: PowerSync only substitutes PS_* variables"
            ));
        } else if !ps_env.contains_key(r) {
            findings.push(format!(
                "powersync/config.yaml: !env {r} is not set in the powersync service's environment"
            ));
        }
    }
    let conn = &config["replication"]["connections"][0];
    if conn["type"].as_str() != Some("postgresql") {
        findings.push(
            "powersync/config.yaml: replication.connections[0].type must be postgresql".into(),
        );
    }
    if config["storage"]["type"].as_str() != Some("postgresql") {
        findings.push("powersync/config.yaml: storage.type must be postgresql (bucket storage on the managed database)".into());
    }
    for (what, node) in [("replication", conn), ("storage", &config["storage"])] {
        if node["sslmode"].as_str() != Some("verify-full") {
            findings.push(format!(
                "powersync/config.yaml: {what} sslmode must be verify-full"
            ));
        }
    }
    if config["client_auth"]["jwks_uri"].is_null() {
        findings.push("powersync/config.yaml: client_auth.jwks_uri is missing".into());
    }
    let rules_path = config["sync_config"]["path"].as_str().unwrap_or("");
    if rules_path.is_empty() {
        findings.push("powersync/config.yaml: sync_config.path is missing".into());
        return findings;
    }
    let rules: Value = match fs::read_to_string(dir.join(rules_path))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_norway::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            findings.push(format!("powersync/{rules_path}: {e}"));
            return findings;
        }
    };
    let queries: Vec<String> = rules["bucket_definitions"]
        .as_mapping()
        .map(|m| {
            m.values()
                .flat_map(|b| b["data"].as_sequence().cloned().unwrap_or_default())
                .filter_map(|q| q.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if queries.is_empty() {
        findings.push(format!("powersync/{rules_path}: no data query"));
    }
    let columns = [
        "device_id",
        "time",
        "lat",
        "lon",
        "alt",
        "speed",
        "heading",
        "accuracy",
        "battery",
        "updated_at",
    ];
    for q in &queries {
        let lower = q.to_ascii_lowercase();
        if !lower.contains(" as id") {
            findings.push(format!(
                "powersync/{rules_path}: query has no id column: {q}"
            ));
        }
        if !lower.contains("from device_latest") {
            findings.push(format!(
                "powersync/{rules_path}: query must read the plain table device_latest (hypertables cannot sync): {q}"
            ));
        }
        for c in columns {
            if !lower.contains(c) {
                findings.push(format!("powersync/{rules_path}: column {c} is not synced"));
            }
        }
    }
    findings
}
