//! Pinned host keys, one known_hosts file per env: learned once from the instance's console
//! output (cloud-init prints its host keys there) or given by the operator, never accepted
//! blindly on first contact.

use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} is not an SSH public host key (expected \"ssh-ed25519 AAAA...\")")]
    BadKey(String),
    #[error(
        "no SSH host key of {host} is pinned and none was found in the instance's console output.\n\
         Next: open the instance's console log in the OVH manager, find the lines between \
         `BEGIN SSH HOST KEY KEYS` and `END SSH HOST KEY KEYS`, and pass one with \
         `--host-key \"ssh-ed25519 AAAA...\"`"
    )]
    NoKey { host: String },
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// `host` or `[host]:port`, as OpenSSH writes it.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks a public host key line and keeps "type base64" (drops the comment).
pub fn normalize_key(line: &str) -> Result<String, KnownHostsError> {
    let mut it = line.split_whitespace();
    let (Some(kind), Some(blob)) = (it.next(), it.next()) else {
        return Err(KnownHostsError::BadKey(line.to_owned()));
    };
    let base64ish = blob.len() >= 40
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=');
    if KEY_TYPES.contains(&kind) && base64ish {
        Ok(format!("{kind} {blob}"))
    } else {
        Err(KnownHostsError::BadKey(line.to_owned()))
    }
}

/// Host keys printed by cloud-init on the console, between its BEGIN/END markers.
pub fn keys_from_console(console: &str) -> Vec<String> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in console.lines() {
        if line.contains("-----BEGIN SSH HOST KEY KEYS-----") {
            inside = true;
            continue;
        }
        if line.contains("-----END SSH HOST KEY KEYS-----") {
            inside = false;
            continue;
        }
        if inside {
            // Console lines may carry a prefix (timestamps, "ec2: "): start at the key type.
            if let Some(start) = KEY_TYPES.iter().filter_map(|t| line.find(t)).min() {
                if let Ok(k) = normalize_key(&line[start..]) {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
        }
    }
    keys
}

/// Does the file already pin a key for this host?
pub fn is_pinned(file: &Path, host: &str, port: u16) -> bool {
    let pattern = host_pattern(host, port);
    std::fs::read_to_string(file)
        .map(|text| {
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(pattern.as_str()))
        })
        .unwrap_or(false)
}

/// Replaces the host's entries in `file` with `keys` (file mode 0600, parent created).
pub fn pin(file: &Path, host: &str, port: u16, keys: &[String]) -> Result<(), KnownHostsError> {
    if keys.is_empty() {
        return Err(KnownHostsError::NoKey {
            host: host.to_owned(),
        });
    }
    let io = |source| KnownHostsError::Io {
        path: file.display().to_string(),
        source,
    };
    let pattern = host_pattern(host, port);
    let mut kept: Vec<String> = std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(pattern.as_str()))
        .map(str::to_owned)
        .collect();
    for k in keys {
        kept.push(format!("{pattern} {}", normalize_key(k)?));
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(file).map_err(io)?;
    f.write_all((kept.join("\n") + "\n").as_bytes())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn console_keys_are_found() {
        let console = format!(
            "[   10.1] cloud-init[900]: boot\n-----BEGIN SSH HOST KEY KEYS-----\n\
             ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHx root@h\n\
             [   11.0] {ED} root@h\n-----END SSH HOST KEY KEYS-----\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7outside root@h\n"
        );
        let keys = keys_from_console(&console);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[1], ED);
        assert!(keys_from_console("no markers here").is_empty());
    }

    #[test]
    fn pin_replaces_entries_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("sub/known_hosts.test");
        pin(&f, "203.0.113.9", 22, &[ED.to_owned()]).unwrap();
        pin(&f, "127.0.0.1", 2222, &[ED.to_owned()]).unwrap();
        pin(&f, "203.0.113.9", 22, &[format!("{ED} comment")]).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(is_pinned(&f, "127.0.0.1", 2222));
        assert!(!is_pinned(&f, "127.0.0.1", 22));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsab",
            "ssh-ed25519 not*base64",
        ] {
            assert!(normalize_key(bad).is_err(), "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            pin(&tmp.path().join("k"), "h", 22, &[]),
            Err(KnownHostsError::NoKey { .. })
        ));
    }
}
