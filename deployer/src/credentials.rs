//! Which decrypted credentials go where: the provider and backend variables Terraform's
//! child process gets (`OVH_*`, `OS_*`, `AWS_*`, `CLOUDFLARE_API_TOKEN`, `TF_VAR_*`), checked
//! for completeness against the contract. Nothing else from the credentials files is exported.

use std::collections::BTreeMap;

use crate::contract::{
    COMMON_CREDENTIALS, ENV_CREDENTIALS, OS_AUTH_URL, OS_DOMAIN_NAME, TF_BOOTSTRAP_VARS,
};

/// Decrypted credentials of one environment (common + env), by name.
#[derive(Clone, Default)]
pub struct Creds {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("credentials missing: {}. Add them with `deployer secrets edit {file}` (templates: credentials/*.enc.env.example)", .names.join(", "))]
    Missing { names: Vec<String>, file: String },
    #[error("credential {name} is malformed: {why}")]
    Malformed { name: String, why: String },
}

impl Creds {
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Every value, for the redactor.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }

    fn require(&self, names: &[&str], file: &str) -> Result<(), CredsError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.get(n).is_none())
            .map(|n| n.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CredsError::Missing {
                names: missing,
                file: file.to_owned(),
            })
        }
    }

    /// Checks that both files hold every required name.
    pub fn check_complete(&self, env: &str) -> Result<(), CredsError> {
        self.require(COMMON_CREDENTIALS, "common")?;
        self.require(ENV_CREDENTIALS, env)
    }

    fn need(&self, name: &str, env: &str) -> Result<&str, CredsError> {
        self.get(name).ok_or_else(|| CredsError::Missing {
            names: vec![name.to_owned()],
            file: if COMMON_CREDENTIALS.contains(&name) {
                "common".to_owned()
            } else {
                env.to_owned()
            },
        })
    }

    /// `OPERATOR_CIDRS` ("a,b") as the JSON list Terraform expects.
    pub fn operator_cidrs_json(&self, env: &str) -> Result<String, CredsError> {
        let raw = self.need("OPERATOR_CIDRS", env)?;
        let list: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Err(CredsError::Malformed {
                name: "OPERATOR_CIDRS".into(),
                why: "empty; expected comma-separated CIDRs such as 203.0.113.7/32".into(),
            });
        }
        for c in &list {
            if !looks_like_cidr(c) {
                return Err(CredsError::Malformed {
                    name: "OPERATOR_CIDRS".into(),
                    why: format!("{c:?} is not a CIDR such as 203.0.113.7/32"),
                });
            }
        }
        serde_json::to_string(&list).map_err(|e| CredsError::Malformed {
            name: "OPERATOR_CIDRS".into(),
            why: e.to_string(),
        })
    }

    /// Pass-through of the provider variables, plus the OpenStack ones derived from them.
    fn provider_env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(k, v)| {
                !v.is_empty()
                    && (k.starts_with("OVH_")
                        || k.starts_with("OS_")
                        || k.starts_with("AWS_")
                        || *k == "CLOUDFLARE_API_TOKEN")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut set_default = |k: &str, v: &str| {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.to_owned(), v.to_owned()));
            }
        };
        set_default("OS_AUTH_URL", OS_AUTH_URL);
        set_default("OS_USER_DOMAIN_NAME", OS_DOMAIN_NAME);
        set_default("OS_PROJECT_DOMAIN_NAME", OS_DOMAIN_NAME);
        if let Some(p) = self.get("OVH_CLOUD_PROJECT_ID") {
            set_default("OS_TENANT_ID", p);
        }
        out
    }

    /// The child environment of `terraform` for an environment root.
    pub fn terraform_env(&self, env: &str) -> Result<Vec<(String, String)>, CredsError> {
        self.check_complete(env)?;
        let mut out = self.provider_env();
        let vars = [
            (
                "project_id",
                self.need("OVH_CLOUD_PROJECT_ID", env)?.to_owned(),
            ),
            ("region", self.need("OS_REGION_NAME", env)?.to_owned()),
            (
                "ssh_public_key",
                self.need("SSH_PUBLIC_KEY", env)?.to_owned(),
            ),
            ("operator_cidrs", self.operator_cidrs_json(env)?),
            ("base_domain", self.need("BASE_DOMAIN", env)?.to_owned()),
            (
                "cloudflare_zone_id",
                self.need("CLOUDFLARE_ZONE_ID", env)?.to_owned(),
            ),
            ("acme_email", self.need("ACME_EMAIL", env)?.to_owned()),
        ];
        debug_assert_eq!(vars.len(), crate::contract::TF_VARS.len());
        out.extend(vars.into_iter().map(|(k, v)| (format!("TF_VAR_{k}"), v)));
        Ok(out)
    }

    /// The child environment of `terraform` for the bootstrap root (local state).
    pub fn bootstrap_env(&self, env: &str) -> Result<Vec<(String, String)>, CredsError> {
        self.require(
            &[
                "OVH_ENDPOINT",
                "OVH_APPLICATION_KEY",
                "OVH_APPLICATION_SECRET",
                "OVH_CONSUMER_KEY",
            ],
            "common",
        )?;
        let mut out: Vec<(String, String)> = self
            .provider_env()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("AWS_"))
            .collect();
        let vars = [
            (
                "project_id",
                self.need("OVH_CLOUD_PROJECT_ID", env)?.to_owned(),
            ),
            ("env_name", env.to_owned()),
        ];
        debug_assert_eq!(vars.len(), TF_BOOTSTRAP_VARS.len());
        out.extend(vars.into_iter().map(|(k, v)| (format!("TF_VAR_{k}"), v)));
        Ok(out)
    }
}

fn looks_like_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 32),
        Ok(std::net::IpAddr::V6(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 128),
        Err(_) => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn complete() -> Creds {
        let mut pairs: Vec<(String, String)> = COMMON_CREDENTIALS
            .iter()
            .chain(ENV_CREDENTIALS)
            .map(|n| (n.to_string(), format!("value-of-{n}")))
            .collect();
        for (k, v) in pairs.iter_mut() {
            if k == "OPERATOR_CIDRS" {
                *v = "203.0.113.7/32, 2001:db8::/48".into();
            }
        }
        pairs.push(("UNRELATED_NAME".into(), "x".into()));
        Creds::from_pairs(pairs)
    }

    #[test]
    fn terraform_env_exports_only_expected_names() {
        let env = complete().terraform_env("test").unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("TF_VAR_operator_cidrs"),
            Some(r#"["203.0.113.7/32","2001:db8::/48"]"#)
        );
        assert_eq!(get("OS_TENANT_ID"), Some("value-of-OVH_CLOUD_PROJECT_ID"));
        assert_eq!(get("OS_AUTH_URL"), Some(OS_AUTH_URL));
        assert_eq!(
            get("TF_VAR_project_id"),
            Some("value-of-OVH_CLOUD_PROJECT_ID")
        );
        assert!(get("UNRELATED_NAME").is_none());
        assert!(get("BACKEND_IMAGE").is_none());
    }

    #[test]
    fn missing_and_malformed_are_named() {
        let mut c = complete();
        c.values.remove("OS_PASSWORD");
        let err = c.terraform_env("preprod").unwrap_err().to_string();
        assert!(
            err.contains("OS_PASSWORD") && err.contains("secrets edit preprod"),
            "{err}"
        );
        let mut c = complete();
        c.values.insert("OPERATOR_CIDRS".into(), "10.0.0.1".into());
        let err = c.terraform_env("test").unwrap_err().to_string();
        assert!(err.contains("not a CIDR"), "{err}");
        assert!(!format!("{c:?}").contains("value-of"));
    }
}
