//! The outputs of an environment root, parsed from `terraform output -json` and checked
//! against the contract: every name present, each of the right type.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::contract::{TF_OUTPUTS, TF_SENSITIVE_OUTPUTS};

#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error("`terraform output -json` did not return JSON ({0}). Run `deployer output <env>` to see what Terraform says")]
    Malformed(String),
    #[error("`terraform output -json` returned no outputs: has `deployer apply <env>` run for this environment?")]
    Empty,
    #[error("the environment's Terraform outputs lack {}: add them to terraform/environments/<env>/outputs.tf (see deployer::contract::TF_OUTPUTS) and apply", .0.join(", "))]
    Missing(Vec<String>),
    #[error("Terraform output `{name}` should be {expected}, got {got}")]
    WrongType {
        name: String,
        expected: &'static str,
        got: String,
    },
}

/// The managed database, when the environment has one (preprod's may be stopped).
#[derive(Clone)]
pub struct DatabaseOutputs {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: String,
    pub powersync_user: String,
    pub powersync_password: String,
    pub ca_certificate: String,
}

impl std::fmt::Debug for DatabaseOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOutputs")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &"***")
            .field("powersync_user", &self.powersync_user)
            .field("powersync_password", &"***")
            .finish_non_exhaustive()
    }
}

/// What the deployer needs from an environment's Terraform state.
#[derive(Clone)]
pub struct TfOutputs {
    pub instance_id: String,
    pub instance_name: String,
    pub public_ipv4: String,
    pub private_ipv4: String,
    pub ssh_user: String,
    pub api_domain: String,
    pub powersync_domain: String,
    pub mqtt_domain: String,
    pub openstack_region: String,
    /// `None` while the database is switched off (`database_enabled = false`).
    pub database: Option<DatabaseOutputs>,
    /// Every output's value as Terraform gave it (for `deployer output`).
    pub raw: BTreeMap<String, Value>,
}

/// Debug output names the raw outputs but never shows their values (some are secrets).
impl std::fmt::Debug for TfOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TfOutputs")
            .field("instance_id", &self.instance_id)
            .field("instance_name", &self.instance_name)
            .field("public_ipv4", &self.public_ipv4)
            .field("ssh_user", &self.ssh_user)
            .field("api_domain", &self.api_domain)
            .field("mqtt_domain", &self.mqtt_domain)
            .field("database", &self.database)
            .field("raw", &self.raw.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TfOutputs {
    /// Values that must never be printed.
    pub fn secret_values(&self) -> Vec<String> {
        self.database
            .iter()
            .flat_map(|d| [d.password.clone(), d.powersync_password.clone()])
            .collect()
    }
}

/// Parses `terraform output -json`.
pub fn parse(json: &str) -> Result<TfOutputs, OutputsError> {
    let top: Value =
        serde_json::from_str(json).map_err(|e| OutputsError::Malformed(e.to_string()))?;
    let Value::Object(map) = top else {
        return Err(OutputsError::Malformed("expected a JSON object".into()));
    };
    if map.is_empty() {
        return Err(OutputsError::Empty);
    }
    let mut raw = BTreeMap::new();
    for (name, entry) in map {
        let value = entry
            .get("value")
            .cloned()
            .ok_or_else(|| OutputsError::Malformed(format!("output `{name}` has no \"value\"")))?;
        raw.insert(name, value);
    }
    // Terraform leaves null outputs out of `output -json`: the database outputs are null
    // while the database is switched off, so only the others must be present.
    let missing: Vec<String> = TF_OUTPUTS
        .iter()
        .filter(|n| !is_database_output(n) && !raw.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(OutputsError::Missing(missing));
    }
    let s = |name: &str| string(&raw, name);
    let db_host = opt_string(&raw, "db_host")?;
    let database = match db_host {
        None => None,
        Some(host) => Some(DatabaseOutputs {
            host,
            port: port(&raw, "db_port")?,
            name: s("db_name")?,
            user: s("db_user")?,
            password: s("db_password")?,
            powersync_user: s("powersync_db_user")?,
            powersync_password: s("powersync_db_password")?,
            ca_certificate: s("db_ca_certificate")?,
        }),
    };
    Ok(TfOutputs {
        instance_id: s("instance_id")?,
        instance_name: s("instance_name")?,
        public_ipv4: s("public_ipv4")?,
        private_ipv4: s("private_ipv4")?,
        ssh_user: s("ssh_user")?,
        api_domain: s("api_domain")?,
        powersync_domain: s("powersync_domain")?,
        mqtt_domain: s("mqtt_domain")?,
        openstack_region: s("openstack_region")?,
        database,
        raw,
    })
}

/// The outputs that are null while the database is switched off.
pub fn is_database_output(name: &str) -> bool {
    name.starts_with("db_") || name.starts_with("powersync_db_")
}

/// Is `name` declared sensitive by the contract?
pub fn is_sensitive(name: &str) -> bool {
    TF_SENSITIVE_OUTPUTS.contains(&name)
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn opt_string(raw: &BTreeMap<String, Value>, name: &str) -> Result<Option<String>, OutputsError> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(OutputsError::WrongType {
            name: name.into(),
            expected: "a string",
            got: kind(other),
        }),
    }
}

fn string(raw: &BTreeMap<String, Value>, name: &str) -> Result<String, OutputsError> {
    match raw.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(OutputsError::WrongType {
            name: name.into(),
            expected: "a non-empty string",
            got: if other.as_str() == Some("") {
                "an empty string".into()
            } else {
                kind(other)
            },
        }),
        None => Err(OutputsError::Missing(vec![name.into()])),
    }
}

fn port(raw: &BTreeMap<String, Value>, name: &str) -> Result<u16, OutputsError> {
    let v = raw
        .get(name)
        .ok_or_else(|| OutputsError::Missing(vec![name.into()]))?;
    // Terraform gives numbers; accept a numeric string too (some providers export strings).
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| OutputsError::WrongType {
            name: name.into(),
            expected: "a port number",
            got: kind(v),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete `terraform output -json` document with fake values.
    pub fn sample(db: bool) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for name in TF_OUTPUTS {
            let value = match *name {
                "db_port" if db => serde_json::json!(20184),
                n if n.starts_with("db_") || n.starts_with("powersync_db_") => {
                    if db {
                        serde_json::json!(format!("fake-{n}"))
                    } else {
                        Value::Null
                    }
                }
                n => serde_json::json!(format!("fake-{n}")),
            };
            m.insert(
                name.to_string(),
                serde_json::json!({"sensitive": is_sensitive(name), "type": "string", "value": value}),
            );
        }
        Value::Object(m)
    }

    #[test]
    fn parses_a_full_document() {
        let o = parse(&sample(true).to_string()).unwrap();
        assert_eq!(o.instance_id, "fake-instance_id");
        let db = o.database.as_ref().unwrap();
        assert_eq!(db.port, 20184);
        assert_eq!(
            o.secret_values(),
            ["fake-db_password", "fake-powersync_db_password"]
        );
        assert!(!format!("{o:?}").contains("fake-db_password"));
    }

    #[test]
    fn database_may_be_off() {
        let o = parse(&sample(false).to_string()).unwrap();
        assert!(o.database.is_none());
        // As Terraform prints it: null outputs left out.
        let mut doc = sample(false);
        doc.as_object_mut()
            .unwrap()
            .retain(|k, _| !is_database_output(k));
        assert!(parse(&doc.to_string()).unwrap().database.is_none());
    }

    #[test]
    fn broken_documents_are_refused() {
        assert!(matches!(
            parse("{not json"),
            Err(OutputsError::Malformed(_))
        ));
        assert!(matches!(parse("[]"), Err(OutputsError::Malformed(_))));
        assert!(matches!(parse("{}"), Err(OutputsError::Empty)));
        let mut doc = sample(true);
        doc.as_object_mut().unwrap().remove("public_ipv4");
        doc.as_object_mut().unwrap().remove("ssh_user");
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(err.contains("public_ipv4, ssh_user"), "{err}");
        let mut doc = sample(true);
        doc["db_port"]["value"] = serde_json::json!("not-a-port");
        assert!(matches!(
            parse(&doc.to_string()),
            Err(OutputsError::WrongType { .. })
        ));
        let mut doc = sample(true);
        doc["instance_id"]["value"] = serde_json::json!(42);
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(err.contains("instance_id"), "{err}");
    }
}
