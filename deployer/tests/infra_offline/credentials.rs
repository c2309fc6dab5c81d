//! credentials/*.example against the contract.

use super::*;

fn keys(path: &Path) -> Result<Vec<String>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect())
}

pub fn check(root: &Path) -> Vec<String> {
    let mut findings = Vec::new();
    let optional: Vec<&str> = contract::ENV_OPTIONAL_CREDENTIALS.to_vec();
    for (file, required, allowed_extra) in [
        (
            "credentials/common.enc.env.example",
            contract::COMMON_CREDENTIALS,
            vec![],
        ),
        (
            "credentials/env.enc.env.example",
            contract::ENV_CREDENTIALS,
            optional,
        ),
    ] {
        let found = match keys(&root.join(file)) {
            Ok(k) => k,
            Err(e) => {
                findings.push(e);
                continue;
            }
        };
        for k in required {
            if !found.iter().any(|f| f == k) {
                findings.push(format!("{file}: misses {k} (contract)"));
            }
        }
        for f in &found {
            if !required.contains(&f.as_str()) && !allowed_extra.contains(&f.as_str()) {
                findings.push(format!("{file}: {f} is not in the contract"));
            }
        }
    }
    findings
}
