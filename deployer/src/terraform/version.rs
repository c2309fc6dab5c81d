//! The Terraform version check: the deployer refuses versions outside the pinned range
//! (1.11.2-1.11.3 cannot write state to OVH Object Storage).

use semver::{Version, VersionReq};

use crate::contract::TF_REQUIRED_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("cannot read the Terraform version from `terraform version -json`: {0}")]
    Unreadable(String),
    #[error(
        "Terraform {found} is not supported: the deployer needs {required} \
         (1.11.2-1.11.3 fail to write state to OVH Object Storage). \
         Install a supported version, e.g. https://releases.hashicorp.com/terraform/1.11.4/"
    )]
    Unsupported { found: Version, required: String },
}

/// Parses `terraform version -json` output and checks it against the pinned range.
pub fn check(version_json: &str) -> Result<Version, VersionError> {
    #[derive(serde::Deserialize)]
    struct V {
        terraform_version: String,
    }
    let v: V =
        serde_json::from_str(version_json).map_err(|e| VersionError::Unreadable(e.to_string()))?;
    let found = Version::parse(v.terraform_version.trim())
        .map_err(|e| VersionError::Unreadable(format!("{:?}: {e}", v.terraform_version)))?;
    let req = VersionReq::parse(TF_REQUIRED_VERSION)
        .map_err(|e| VersionError::Unreadable(format!("pinned range: {e}")))?;
    if req.matches(&found) {
        Ok(found)
    } else {
        Err(VersionError::Unsupported {
            found,
            required: TF_REQUIRED_VERSION.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(v: &str) -> String {
        format!(r#"{{"terraform_version":"{v}","platform":"linux_amd64"}}"#)
    }

    #[test]
    fn pinned_range() {
        assert!(check(&j("1.11.4")).is_ok());
        assert!(check(&j("1.13.0")).is_ok());
        for bad in ["1.11.2", "1.11.3", "1.10.5", "2.0.0"] {
            let err = check(&j(bad)).unwrap_err().to_string();
            assert!(err.contains("not supported"), "{bad}: {err}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(check("Terraform v1.11.4").is_err());
        assert!(check(&j("one.two")).is_err());
    }
}
