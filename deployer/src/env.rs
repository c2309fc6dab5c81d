//! Which environment a command acts on: the project checkout, the env's Terraform folder,
//! its credentials files and its local state (pinned host keys), all resolved and checked
//! before anything runs.

use std::path::{Path, PathBuf};

/// A reserved target for `reboot-test`: the ingest and the TimescaleDB of this machine.
pub const LOCAL_TARGET: &str = "local";

/// Errors while resolving the project or the environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "no AccoReboot checkout found from {start}: expected a folder with terraform/environments/. \
         Run the deployer from inside the repository or pass --repo <path>"
    )]
    NoProject { start: PathBuf },
    #[error(
        "invalid environment name {name:?}: use lowercase letters, digits, '-' or '_' (for example: test, preprod, prod)"
    )]
    InvalidName { name: String },
    #[error("unknown environment {name:?}: no folder terraform/environments/{name}. Known environments: {known}")]
    Unknown { name: String, known: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The project checkout the deployer works in.
#[derive(Debug, Clone)]
pub struct Project {
    /// Repository root (holds terraform/, compose/, credentials/).
    root: PathBuf,
}

impl Project {
    /// Uses `explicit` when given, else walks up from `start` to the first folder holding
    /// `terraform/environments`.
    pub fn locate(explicit: Option<&Path>, start: &Path) -> Result<Self, EnvError> {
        if let Some(root) = explicit {
            if root.join("terraform/environments").is_dir() {
                return Ok(Self {
                    root: root.to_path_buf(),
                });
            }
            return Err(EnvError::NoProject {
                start: root.to_path_buf(),
            });
        }
        let mut dir = Some(start);
        while let Some(d) = dir {
            if d.join("terraform/environments").is_dir() {
                return Ok(Self {
                    root: d.to_path_buf(),
                });
            }
            dir = d.parent();
        }
        Err(EnvError::NoProject {
            start: start.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn credentials_dir(&self) -> PathBuf {
        self.root.join("credentials")
    }

    pub fn sops_yaml(&self) -> PathBuf {
        self.root.join(".sops.yaml")
    }

    pub fn compose_dir(&self) -> PathBuf {
        self.root.join("compose")
    }

    pub fn bootstrap_dir(&self) -> PathBuf {
        self.root.join("terraform/bootstrap")
    }

    /// Every folder under terraform/environments/, sorted.
    pub fn environments(&self) -> Result<Vec<String>, EnvError> {
        let dir = self.root.join("terraform/environments");
        let entries = std::fs::read_dir(&dir).map_err(|source| EnvError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Resolves `name` to an environment of this project.
    pub fn env(&self, name: &str) -> Result<Environment, EnvError> {
        validate_name(name)?;
        let tf_dir = self.root.join("terraform/environments").join(name);
        if !tf_dir.is_dir() {
            let known = self.environments()?;
            return Err(EnvError::Unknown {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(Environment {
            name: name.to_owned(),
            tf_dir,
            project: self.clone(),
        })
    }
}

/// Checks the shape of an environment name (it becomes a path and a state key).
pub fn validate_name(name: &str) -> Result<(), EnvError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(EnvError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// One deployable environment (a folder under terraform/environments/).
#[derive(Debug, Clone)]
pub struct Environment {
    name: String,
    tf_dir: PathBuf,
    project: Project,
}

impl Environment {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tf_dir(&self) -> &Path {
        &self.tf_dir
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The env's encrypted credentials file.
    pub fn credentials_file(&self) -> PathBuf {
        self.project
            .credentials_dir()
            .join(format!("{}.enc.env", self.name))
    }

    /// Default per-env known_hosts file: `~/.config/accoreboot/known_hosts.<env>`.
    pub fn default_known_hosts(&self) -> PathBuf {
        config_dir().join(format!("known_hosts.{}", self.name))
    }
}

/// `$XDG_CONFIG_HOME/accoreboot` (or `~/.config/accoreboot`).
pub fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("accoreboot")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["test", "preprod", "prod", "eu-2", "a_b", "0x"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Test", "../prod", "a/b", "-x", "a b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_env_lists_known_ones() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("terraform/environments/test")).unwrap();
        std::fs::create_dir_all(tmp.path().join("terraform/environments/prod")).unwrap();
        let p = Project::locate(None, &tmp.path().join("terraform")).unwrap();
        assert!(p.env("test").is_ok());
        let err = p.env("staging").unwrap_err().to_string();
        assert!(err.contains("prod, test"), "{err}");
    }

    #[test]
    fn no_project_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Project::locate(Some(tmp.path()), tmp.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--repo"), "{err}");
    }
}
