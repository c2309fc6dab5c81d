//! Which MQTT ports an environment opens to the Internet, read from its Terraform inputs:
//! MQTT over TLS ([`MQTTS_PORT`]) everywhere, plain MQTT ([`MQTT_PORT`]) only where the env's
//! `terraform.tfvars` sets [`PLAIN_MQTT_VAR`] to true (else the variable's default in the
//! env's `.tf` files, else closed). `verify` and `status` use it to probe only what is open.

use std::path::{Path, PathBuf};

use hcl::{Body, Expression};

use crate::contract::{MQTTS_PORT, MQTT_PORT, PLAIN_MQTT_VAR};

#[derive(Debug, thiserror::Error)]
pub enum ExposureError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid HCL: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: {PLAIN_MQTT_VAR} must be true or false, found {found}")]
    NotABool { path: PathBuf, found: String },
}

/// The MQTT ports open to the Internet in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttExposure {
    /// Plain MQTT ([`MQTT_PORT`]) is open.
    pub plain: bool,
}

impl MqttExposure {
    /// The TLS port: open in every environment.
    pub fn tls_port(&self) -> u16 {
        MQTTS_PORT
    }

    /// The plain port, when the env opens it.
    pub fn plain_port(&self) -> Option<u16> {
        self.plain.then_some(MQTT_PORT)
    }
}

fn parse(path: &Path) -> Result<Option<Body>, ExposureError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ExposureError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    hcl::parse(&text)
        .map(Some)
        .map_err(|e| ExposureError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn as_bool(path: &Path, e: &Expression) -> Result<bool, ExposureError> {
    match e {
        Expression::Bool(b) => Ok(*b),
        other => Err(ExposureError::NotABool {
            path: path.to_path_buf(),
            found: other.to_string(),
        }),
    }
}

/// Reads the exposure of the env whose Terraform root is `tf_dir`.
pub fn of_env(tf_dir: &Path) -> Result<MqttExposure, ExposureError> {
    let tfvars = tf_dir.join("terraform.tfvars");
    if let Some(body) = parse(&tfvars)? {
        if let Some(a) = body.attributes().find(|a| a.key() == PLAIN_MQTT_VAR) {
            return Ok(MqttExposure {
                plain: as_bool(&tfvars, a.expr())?,
            });
        }
    }
    // The variable's default, from whichever .tf file declares it.
    let mut files: Vec<PathBuf> = std::fs::read_dir(tf_dir)
        .map_err(|source| ExposureError::Io {
            path: tf_dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    for file in files {
        let Some(body) = parse(&file)? else { continue };
        let declared = body
            .blocks()
            .filter(|b| b.identifier() == "variable")
            .find(|b| b.labels().first().map(|l| l.as_str()) == Some(PLAIN_MQTT_VAR));
        if let Some(block) = declared {
            let default = block.body().attributes().find(|a| a.key() == "default");
            return Ok(MqttExposure {
                plain: match default {
                    Some(a) => as_bool(&file, a.expr())?,
                    None => false,
                },
            });
        }
    }
    Ok(MqttExposure { plain: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const VARIABLE: &str =
        "variable \"allow_plain_mqtt\" {\n  type    = bool\n  default = false\n}\n";

    #[test]
    fn the_repositorys_environments() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/environments");
        let plain = |e: &str| of_env(&root.join(e)).unwrap().plain;
        assert!(plain("test"));
        assert!(!plain("preprod"));
        assert!(!plain("prod"));
        let prod = of_env(&root.join("prod")).unwrap();
        assert_eq!((prod.tls_port(), prod.plain_port()), (8883, None));
    }

    #[test]
    fn tfvars_wins_then_the_default_then_closed() {
        let d = env(&[
            ("variables.tf", VARIABLE),
            ("terraform.tfvars", "allow_plain_mqtt = true\n"),
        ]);
        assert_eq!(of_env(d.path()).unwrap().plain_port(), Some(1883));
        let d = env(&[(
            "variables.tf",
            "variable \"allow_plain_mqtt\" {\n  default = true\n}\n",
        )]);
        assert!(of_env(d.path()).unwrap().plain);
        let d = env(&[("variables.tf", VARIABLE), ("terraform.tfvars", "x = 1\n")]);
        assert!(!of_env(d.path()).unwrap().plain);
        let d = env(&[("main.tf", "terraform {}\n")]);
        assert!(!of_env(d.path()).unwrap().plain);
    }

    #[test]
    fn broken_inputs_are_named() {
        let d = env(&[("terraform.tfvars", "allow_plain_mqtt = \"yes\"\n")]);
        let err = of_env(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("terraform.tfvars") && err.contains("true or false"),
            "{err}"
        );
        let d = env(&[("terraform.tfvars", "allow_plain_mqtt = = true\n")]);
        let err = of_env(d.path()).unwrap_err().to_string();
        assert!(err.contains("not valid HCL"), "{err}");
        let err = of_env(Path::new("/nonexistent/env"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/env"), "{err}");
    }
}
