//! Compose files: interpolation, schema validation, and the project's rules.

use super::*;
use serde_json::Value;

/// The .env the deployer writes, with sample values (contract::COMPOSE_ENV_KEYS).
pub fn sample_env() -> BTreeMap<String, String> {
    contract::COMPOSE_ENV_KEYS
        .iter()
        .map(|k| {
            let v = match *k {
                "ENV_NAME" => "test",
                "API_DOMAIN" => "api.test.example.org",
                "POWERSYNC_DOMAIN" => "sync.test.example.org",
                "MQTT_DOMAIN" => "mqtt.test.example.org",
                "ACME_EMAIL" => "ops@example.org",
                "BACKEND_IMAGE" => "registry.example.org/accoreboot/backend:1.4.2",
                "BACKEND_REPLICAS" => "3",
                "INGEST_IMAGE" => "registry.example.org/accoreboot/ingest:0.1.0",
                "DATABASE_URL" => {
                    "postgres://app:pw@db.internal:20184/accoreboot?sslmode=verify-full"
                }
                "PS_DATA_SOURCE_URI" => "postgresql://powersync:pw@db.internal:20184/accoreboot",
                "PS_STORAGE_URI" => "postgresql://powersync:pw@db.internal:20184/powersync_storage",
                "PS_JWKS_URI" => "https://api.test.example.org/.well-known/jwks.json",
                "POWERSYNC_DB_USER" => "powersync",
                "BACKEND_MQTT_USERNAME" => "backend",
                "BACKEND_MQTT_PASSWORD" => "sample-backend-mqtt-secret-0123456789",
                "TEST_DEVICE_ID" => contract::PROBE_DEVICE,
                "TEST_DEVICE_PASSWORD" => "sample-probe-device-secret-0123456789",
                _ => "sample",
            };
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Compose-style interpolation of one string: `$$`, `$NAME`, `${NAME}`, `${NAME:-def}`,
/// `${NAME-def}`, `${NAME:?err}`, `${NAME?err}`, `${NAME:+alt}`, `${NAME+alt}`.
/// Returns the value and the names used without a default that `env` lacks.
pub fn interpolate(s: &str, env: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|(_, c)| *c) {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                let rest = &s[i + 2..];
                let Some(end) = rest.find('}') else {
                    missing.push(format!("unterminated ${{ in {s:?}"));
                    return (out, missing);
                };
                let inner = &rest[..end];
                for _ in 0..inner.chars().count() + 2 {
                    chars.next();
                }
                let name_len = inner
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(inner.len());
                let (name, op) = inner.split_at(name_len);
                let value = env.get(name).filter(|v| !v.is_empty());
                let set = env.contains_key(name);
                let resolved = if let Some(d) = op.strip_prefix(":-") {
                    value.cloned().unwrap_or_else(|| d.to_owned())
                } else if let Some(d) = op.strip_prefix('-') {
                    env.get(name).cloned().unwrap_or_else(|| d.to_owned())
                } else if let Some(a) = op.strip_prefix(":+") {
                    value.map(|_| a.to_owned()).unwrap_or_default()
                } else if let Some(a) = op.strip_prefix('+') {
                    if set {
                        a.to_owned()
                    } else {
                        String::new()
                    }
                } else if op.starts_with(":?") || op.starts_with('?') || op.is_empty() {
                    match env.get(name) {
                        Some(v) => v.clone(),
                        None => {
                            missing.push(name.to_owned());
                            String::new()
                        }
                    }
                } else {
                    missing.push(format!("unsupported interpolation ${{{inner}}}"));
                    String::new()
                };
                out.push_str(&resolved);
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some((_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || *c == '_' {
                        name.push(*c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                match env.get(&name) {
                    Some(v) => out.push_str(v),
                    None => missing.push(name),
                }
            }
            _ => out.push('$'),
        }
    }
    (out, missing)
}

/// Interpolates every string of the document; a value that was wholly an interpolation and
/// became an integer is typed as one (as Compose does for e.g. deploy.replicas).
fn interpolate_doc(v: &mut Value, env: &BTreeMap<String, String>, missing: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let whole = s.starts_with("${") && s.ends_with('}');
            let (new, miss) = interpolate(s, env);
            missing.extend(miss);
            *v = match (whole, new.parse::<i64>()) {
                (true, Ok(n)) => Value::from(n),
                _ => Value::String(new),
            };
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| interpolate_doc(i, env, missing)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| interpolate_doc(i, env, missing)),
        _ => {}
    }
}

fn schema() -> jsonschema::Validator {
    let path = repo_root().join("compose/schema/compose-spec.json");
    let text = fs::read_to_string(&path).expect("compose/schema/compose-spec.json");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft201909)
        .should_validate_formats(false)
        .build(&schema)
        .expect("the vendored compose schema compiles")
}

fn duration(v: Option<&Value>) -> Option<Duration> {
    v.and_then(Value::as_str)
        .and_then(|s| humantime::parse_duration(s).ok())
}

fn env_of<'a>(svc: &'a Value, key: &str) -> Option<&'a Value> {
    match svc.get("environment") {
        Some(Value::Object(m)) => m.get(key),
        Some(Value::Array(items)) => items.iter().find(|i| {
            i.as_str()
                .is_some_and(|s| s.split_once('=').is_some_and(|(k, _)| k == key))
        }),
        _ => None,
    }
}

/// An image reference with a pinned tag or digest (not `latest`, not tag-less).
fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

/// Checks one compose file. `production` adds the rules of the deployed bundle.
pub fn check(path: &Path, env: &BTreeMap<String, String>, production: bool) -> Vec<String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut findings = Vec::new();
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let raw: Value = match serde_norway::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{name}: not valid YAML: {e}")],
    };
    let mut doc = raw.clone();
    let mut missing = BTreeSet::new();
    interpolate_doc(&mut doc, env, &mut missing);
    for m in missing {
        findings.push(format!(
            "{name}: uses ${{{m}}} without a default and it is not a key of the deployer's .env (contract::COMPOSE_ENV_KEYS)"
        ));
    }
    // The vendored schema predates the top-level `name` (project name) of the current
    // Compose specification: check it here by the spec's rule, then validate the rest.
    let mut for_schema = doc.clone();
    if let Some(n) = for_schema.as_object_mut().and_then(|m| m.remove("name")) {
        let ok = n.as_str().is_some_and(|s| {
            s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
        if !ok {
            findings.push(format!(
                "{name}: project name {n} must match ^[a-z0-9][a-z0-9_-]*$"
            ));
        }
    }
    let validator = schema();
    for err in validator.iter_errors(&for_schema) {
        findings.push(format!(
            "{name}: compose schema: {} at {}",
            err,
            err.instance_path()
        ));
    }
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        findings.push(format!("{name}: no services"));
        return findings;
    };
    let raw_services = raw.get("services").and_then(Value::as_object);
    for (svc_name, svc) in services {
        let restart = svc.get("restart").and_then(Value::as_str).unwrap_or("");
        let one_shot = restart.starts_with("on-failure");
        match restart {
            "always" | "unless-stopped" => {}
            r if r.starts_with("on-failure") => {}
            "" => findings.push(format!(
                "{name}: service {svc_name} has no restart policy (a host reboot must bring it back)"
            )),
            other => findings.push(format!(
                "{name}: service {svc_name} has restart: {other}; use unless-stopped or always"
            )),
        }
        let hc = svc.get("healthcheck");
        let disabled = hc
            .and_then(|h| h.get("disable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let has_test = hc.and_then(|h| h.get("test")).is_some();
        if !(has_test || (disabled && one_shot)) {
            findings.push(format!(
                "{name}: service {svc_name} has no healthcheck (only one-shot on-failure jobs may disable it)"
            ));
        }
        // Images: pinned, or provided by the deployer through a required variable.
        let raw_image = raw_services
            .and_then(|s| s.get(svc_name))
            .and_then(|s| s.get("image"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let built = svc.get("build").is_some();
        if raw_image.contains("${") {
            let required = raw_image.starts_with("${") && raw_image.contains(":?");
            if !required {
                findings.push(format!(
                    "{name}: service {svc_name} image {raw_image:?} must be a required variable (${{NAME:?...}}) set by the deployer"
                ));
            }
        } else if raw_image.is_empty() && !built {
            findings.push(format!("{name}: service {svc_name} has no image"));
        } else if !raw_image.is_empty() && !built && !pinned(raw_image) {
            findings.push(format!(
                "{name}: service {svc_name} image {raw_image:?} is not pinned to a tag (no latest)"
            ));
        }
    }

    // The ingest drains for INGEST_SHUTDOWN_DEADLINE after SIGTERM: Docker must wait longer.
    match services.get("ingest") {
        None => findings.push(format!("{name}: no ingest service")),
        Some(ingest) => {
            let grace = duration(ingest.get("stop_grace_period"));
            let deadline = duration(env_of(ingest, "INGEST_SHUTDOWN_DEADLINE"))
                .unwrap_or(Duration::from_secs(20));
            match grace {
                Some(g) if g > deadline => {}
                Some(g) => findings.push(format!(
                    "{name}: ingest stop_grace_period {g:?} must be longer than INGEST_SHUTDOWN_DEADLINE {deadline:?}"
                )),
                None => findings.push(format!(
                    "{name}: ingest has no stop_grace_period (Docker's default 10s cuts the drain short)"
                )),
            }
            findings.extend(check_open_files(&name, ingest, production));
            let wal_dir = env_of(ingest, "INGEST_WAL_DIR").and_then(Value::as_str);
            let mounts = volume_targets(ingest);
            match wal_dir {
                Some(w) if mounts.iter().any(|(_, t)| t == w) => {}
                other => findings.push(format!(
                    "{name}: the ingest WAL directory {other:?} is not on a mounted volume"
                )),
            }
            if production {
                let ports = port_strings(ingest);
                let http: Vec<&String> = ports.iter().filter(|p| p.ends_with(":8080")).collect();
                if http.is_empty() || http.iter().any(|p| !p.starts_with("127.0.0.1:")) {
                    findings.push(format!(
                        "{name}: the ingest HTTP port 8080 must be published on 127.0.0.1 only, found {http:?}"
                    ));
                }
                if !mounts.iter().any(|(s, t)| {
                    t == contract::DB_CA_CONTAINER_PATH && s.ends_with(contract::DB_CA_FILE)
                }) {
                    findings.push(format!(
                        "{name}: the ingest does not mount {} at {}",
                        contract::DB_CA_FILE,
                        contract::DB_CA_CONTAINER_PATH
                    ));
                }
            }
        }
    }
    if production {
        match services.get("caddy") {
            Some(caddy) => {
                if !volume_targets(caddy)
                    .iter()
                    .any(|(s, t)| t == "/data" && s.starts_with('/'))
                {
                    findings.push(format!(
                        "{name}: caddy's /data must be a bind mount on the persistent data volume"
                    ));
                }
            }
            None => findings.push(format!("{name}: no caddy service")),
        }
        for needed in ["backend", "powersync"] {
            if !services.contains_key(needed) {
                findings.push(format!("{name}: no {needed} service"));
            }
        }
        findings.extend(check_accounts(&name, services, raw_services));
    }
    findings
}

/// The ingest holds [`contract::INGEST_FDS_PER_CONNECTION`] descriptors per MQTT connection:
/// its open-files limit (`ulimits: nofile`, both soft and hard) must allow
/// `--max-connections` of them plus a reserve. Production must set both explicitly.
fn check_open_files(name: &str, ingest: &Value, production: bool) -> Vec<String> {
    let mut findings = Vec::new();
    let max = match env_of(ingest, "INGEST_MAX_CONNECTIONS") {
        None => Some(contract::INGEST_DEFAULT_MAX_CONNECTIONS),
        Some(v) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match text.trim().parse::<u64>() {
                Ok(0) => {
                    findings.push(format!(
                        "{name}: the ingest sets INGEST_MAX_CONNECTIONS=0 (no limit): the open-files limit would decide instead; give a number"
                    ));
                    None
                }
                Ok(n) => Some(n),
                Err(_) => {
                    findings.push(format!(
                        "{name}: the ingest's INGEST_MAX_CONNECTIONS {text:?} is not a number"
                    ));
                    None
                }
            }
        }
    };
    let nofile = ingest.get("ulimits").and_then(|u| u.get("nofile"));
    let limits = match nofile {
        None if production => {
            findings.push(format!(
                "{name}: the ingest has no ulimits: nofile; it needs {} descriptors per connection",
                contract::INGEST_FDS_PER_CONNECTION
            ));
            return findings;
        }
        None => return findings,
        Some(Value::Number(n)) => n.as_u64().map(|n| (n, n)),
        Some(v) => v
            .get("soft")
            .and_then(Value::as_u64)
            .zip(v.get("hard").and_then(Value::as_u64)),
    };
    let Some((soft, hard)) = limits else {
        findings.push(format!(
            "{name}: the ingest's ulimits: nofile must be a number or soft/hard numbers"
        ));
        return findings;
    };
    if let Some(max) = max {
        let needed = max * contract::INGEST_FDS_PER_CONNECTION + contract::INGEST_FD_RESERVE;
        if soft.min(hard) < needed {
            findings.push(format!(
                "{name}: the ingest's nofile limit (soft {soft}, hard {hard}) is below {needed} = {} x INGEST_MAX_CONNECTIONS {max} + {}: connections beyond it fail",
                contract::INGEST_FDS_PER_CONNECTION,
                contract::INGEST_FD_RESERVE
            ));
        }
    }
    if soft > hard {
        findings.push(format!(
            "{name}: the ingest's nofile soft limit {soft} is above its hard limit {hard}"
        ));
    }
    findings
}

/// The production bundle's accounts: the broker refuses anonymous clients, so the backend logs
/// in with the service account `ingest-migrate` ensures (same username and secret, the secret
/// from the .env, the account in place before the backend starts), and `ingest-migrate` grants
/// PowerSync's read access to the very user PowerSync connects as.
fn check_accounts(
    name: &str,
    services: &serde_json::Map<String, Value>,
    raw_services: Option<&serde_json::Map<String, Value>>,
) -> Vec<String> {
    let mut findings = Vec::new();
    let text = |svc: &str, key: &str| services.get(svc).and_then(|s| env_value(s, key));
    let raw_text = |svc: &str, key: &str| {
        raw_services
            .and_then(|s| s.get(svc))
            .and_then(|s| env_value(s, key))
    };
    // clap reads a flag's variable as true unless it is one of these.
    let falsey = ["", "n", "no", "f", "false", "off", "0"];
    if let Some(v) = text("ingest", "INGEST_ALLOW_ANONYMOUS") {
        if !falsey.contains(&v.to_ascii_lowercase().as_str()) {
            findings.push(format!(
                "{name}: the ingest sets INGEST_ALLOW_ANONYMOUS={v}: production must refuse anonymous MQTT clients"
            ));
        }
    }
    for (backend_key, migrate_key) in [
        ("MQTT_USERNAME", "INGEST_SERVICE_ACCOUNT"),
        ("MQTT_PASSWORD", "INGEST_SERVICE_ACCOUNT_SECRET"),
    ] {
        let backend = text("backend", backend_key).filter(|v| !v.is_empty());
        let migrate = text("ingest-migrate", migrate_key).filter(|v| !v.is_empty());
        match (&backend, &migrate) {
            (None, _) => findings.push(format!(
                "{name}: the backend has no {backend_key}: the broker refuses anonymous clients, give it the service account"
            )),
            (_, None) => findings.push(format!(
                "{name}: ingest-migrate has no {migrate_key}: nothing creates the backend's service account"
            )),
            (Some(b), Some(m)) if b != m => findings.push(format!(
                "{name}: the backend's {backend_key} and ingest-migrate's {migrate_key} differ: they must come from the same .env key"
            )),
            _ => {}
        }
    }
    for (svc, key) in [
        ("backend", "MQTT_PASSWORD"),
        ("ingest-migrate", "INGEST_SERVICE_ACCOUNT_SECRET"),
    ] {
        if let Some(raw) = raw_text(svc, key) {
            if !(raw.starts_with("${") && raw.ends_with('}')) {
                findings.push(format!(
                    "{name}: {svc}'s {key} must be a variable of the deployer's .env, never a literal"
                ));
            }
        }
    }
    // The probe device `deployer verify` publishes as: the ids and the secret the deployer
    // writes into the .env (TEST_DEVICE_ID, TEST_DEVICE_PASSWORD), nothing else.
    for (key, env_key) in [
        ("INGEST_PROBE_DEVICE", "TEST_DEVICE_ID"),
        ("INGEST_PROBE_DEVICE_SECRET", "TEST_DEVICE_PASSWORD"),
    ] {
        match raw_text("ingest-migrate", key) {
            None => findings.push(format!(
                "{name}: ingest-migrate has no {key}: nothing registers the probe device `deployer verify` publishes as"
            )),
            Some(raw) if !raw.starts_with(&format!("${{{env_key}")) => findings.push(format!(
                "{name}: ingest-migrate's {key} must be ${{{env_key}:?...}} from the deployer's .env (deployer verify logs in with it), never a literal or another key"
            )),
            Some(_) => {}
        }
    }
    if let (Some(probe), Some(service)) = (
        text("ingest-migrate", "INGEST_PROBE_DEVICE"),
        text("ingest-migrate", "INGEST_SERVICE_ACCOUNT"),
    ) {
        if probe == service {
            findings.push(format!(
                "{name}: the probe device and the service account are both {probe:?}"
            ));
        }
    }
    let migrate_deps = services
        .get("backend")
        .and_then(|b| b.get("depends_on"))
        .and_then(|d| d.get("ingest-migrate"))
        .and_then(|m| m.get("condition"))
        .and_then(Value::as_str);
    if migrate_deps != Some("service_completed_successfully") {
        findings.push(format!(
            "{name}: the backend must depend on ingest-migrate (condition: service_completed_successfully), which creates its service account"
        ));
    }
    let ps_user = text("powersync", "PS_DATA_SOURCE_URI").and_then(|u| {
        let rest = u.split_once("://")?.1;
        let userinfo = rest.split_once('@')?.0;
        Some(userinfo.split(':').next().unwrap_or("").to_owned())
    });
    match (text("ingest-migrate", "INGEST_POWERSYNC_ROLE"), ps_user) {
        (None, _) => findings.push(format!(
            "{name}: ingest-migrate has no INGEST_POWERSYNC_ROLE: PowerSync's user gets no SELECT on the published tables"
        )),
        (Some(role), Some(user)) if role != user => findings.push(format!(
            "{name}: ingest-migrate grants INGEST_POWERSYNC_ROLE={role:?} but PowerSync connects as {user:?}"
        )),
        _ => {}
    }
    findings
}

/// The value of one environment variable of a service, map or `KEY=VALUE` list syntax.
fn env_value(svc: &Value, key: &str) -> Option<String> {
    match svc.get("environment")? {
        Value::Object(m) => m.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }),
        Value::Array(items) => items.iter().find_map(|i| {
            let (k, v) = i.as_str()?.split_once('=')?;
            (k == key).then(|| v.to_owned())
        }),
        _ => None,
    }
}

/// (source, target) of a service's volumes, short or long syntax.
pub fn volume_targets(svc: &Value) -> Vec<(String, String)> {
    svc.get("volumes")
        .and_then(Value::as_array)
        .map(|vols| {
            vols.iter()
                .filter_map(|v| match v {
                    Value::String(s) => {
                        let mut parts = s.split(':');
                        let src = parts.next()?.to_owned();
                        let dst = parts.next()?.to_owned();
                        Some((src, dst))
                    }
                    Value::Object(m) => Some((
                        m.get("source")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        m.get("target")?.as_str()?.to_owned(),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn port_strings(svc: &Value) -> Vec<String> {
    svc.get("ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
