//! The SOPS test vectors made by the real Go sops 3.11: every credentials file decrypts to
//! its plaintext, the age layer opens, tampered files are refused, Shamir is refused, and
//! metadata in sops 3.7's unsorted order still decrypts.

mod secrets_support;

use std::path::Path;

use deployer::secrets::{self, SecretsError};
use secrets_support::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Checks that `enc` decrypts to exactly the plaintext file `plain` with `ids`.
fn assert_decrypts_to(enc: &str, plain: &str, ids: &secrets::Identities) {
    let enc = credentials().join(enc);
    let plain_text = read(&credentials().join(plain));
    let got = secrets::decrypt_file(&enc, ids).unwrap();
    let want = plain_pairs(&plain_text);
    let got_pairs: Vec<(String, String)> = got
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(got_pairs, want, "{}", enc.display());
    // Comments included, the text is what `sops -d` prints.
    let text = secrets::decrypt_to_dotenv(&enc, ids).unwrap();
    assert_eq!(text.as_str(), plain_text, "{}", enc.display());
}

#[test]
fn common_decrypts_with_comments_empty_values_escapes_and_unicode() {
    assert_decrypts_to("common.enc.env", "common.env", &one_id(0));
    let s = secrets::decrypt_file(&credentials().join("common.enc.env"), &both_ids()).unwrap();
    assert_eq!(s.get("TF_VAR_os_password"), Some("s3cr3t-p@ss=word"));
    assert_eq!(s.get("EMPTY_VALUE"), Some(""));
    assert_eq!(s.get("QUOTED"), Some("\"double quoted with spaces\""));
    assert_eq!(s.get("MULTILINE"), Some("line1\nline2"));
    assert_eq!(s.get("PUBLIC_unencrypted"), Some("visible in clear"));
    assert_eq!(s.get("UNICODE"), Some("päßwörd ✓"));
}

#[test]
fn test_env_opens_with_either_recipient() {
    assert_decrypts_to("test.enc.env", "test.env", &one_id(0));
    assert_decrypts_to("test.enc.env", "test.env", &one_id(1));
}

#[test]
fn edge_cases_keep_names_and_values_verbatim() {
    assert_decrypts_to("edge.enc.env", "edge.env", &both_ids());
    let s = secrets::decrypt_file(&credentials().join("edge.enc.env"), &both_ids()).unwrap();
    assert_eq!(s.get("export EXPORTED"), Some("value"));
    assert_eq!(s.get(" LEADING_SPACE_KEY"), Some(" spaces around "));
    assert_eq!(s.get("KEY_WITH_HASH"), Some("abc#not-a-comment"));
    assert_eq!(s.get("EQUALS_IN_VALUE"), Some("a=b=c"));
    assert_eq!(s.get("WIN_PATH"), Some("C:\\temp\new"));
    assert_eq!(s.get("CRLF_VALUE"), Some("value\r"));
}

#[test]
fn encrypted_regex_and_mac_only_encrypted() {
    assert_decrypts_to("regex.enc.env", "common.env", &one_id(0));
    assert_decrypts_to("maconly.enc.env", "common.env", &one_id(0));
}

#[test]
fn shamir_key_groups_are_refused_with_their_own_error() {
    let file = credentials().join("shamir.enc.env");
    let err = secrets::decrypt_file(&file, &both_ids()).unwrap_err();
    assert!(matches!(err, SecretsError::ShamirKeyGroups { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("shamir.enc.env") && msg.contains("Shamir"),
        "{msg}"
    );
}

#[test]
fn age_layer_alone() {
    let dir = vectors().join("age-layer");
    let ids = secrets::Identities::from_file(&dir.join("identity.txt")).unwrap();
    let data = secrets::open_age_armored(&read(&dir.join("data.age.armored")), &ids).unwrap();
    assert_eq!(
        data.as_slice(),
        std::fs::read(dir.join("data.expected")).unwrap()
    );
    let err =
        secrets::open_age_armored(&read(&dir.join("data.age.armored")), &stranger()).unwrap_err();
    assert!(
        matches!(err, SecretsError::NoMatchingIdentity { .. }),
        "{err}"
    );
}

#[test]
fn tampered_files_are_refused_naming_the_file() {
    let dir = vectors().join("generated/tamper");
    let plain = read(&credentials().join("common.env"));
    for (name, expect_mac) in [
        ("swap.enc.env", false),
        ("plainchange.enc.env", true),
        ("drop.enc.env", true),
        ("lm.enc.env", true),
    ] {
        let file = dir.join(name);
        let err = secrets::decrypt_file(&file, &both_ids()).unwrap_err();
        if expect_mac {
            assert!(
                matches!(err, SecretsError::MacMismatch { .. }),
                "{name}: {err}"
            );
        } else {
            assert!(
                matches!(&err, SecretsError::TamperedValue { name, .. } if name == "OS_AUTH_URL"),
                "{name}: {err}"
            );
        }
        let msg = format!("{err} {err:?}");
        assert!(msg.contains(name), "{msg}");
        // The path itself contains "deployer", one of the values; look beyond it.
        let msg = msg.replace(&file.display().to_string(), "<file>");
        for (_, v) in plain_pairs(&plain) {
            if v.len() > 3 {
                assert!(!msg.contains(&v), "{name} error leaks a value");
            }
        }
    }
}

/// What sops itself does not detect (names, comments and empty values are outside the MAC).
/// We accept these like sops does; every value still present is authentic, and the
/// deployer reads only the names it expects.
#[test]
fn undetected_tampering_behaves_like_sops_and_keeps_values_authentic() {
    let dir = vectors().join("generated/tamper-undetected");
    let ids = both_ids();
    let inj = secrets::decrypt_file(&dir.join("undetected-empty-injection.enc.env"), &ids).unwrap();
    assert_eq!(inj.get("INJECTED_EMPTY"), Some(""));
    assert_eq!(inj.get("TF_VAR_os_password"), Some("s3cr3t-p@ss=word"));
    let ren =
        secrets::decrypt_file(&dir.join("undetected-unencrypted-rename.enc.env"), &ids).unwrap();
    assert_eq!(ren.get("PUBLIC_unencrypted"), None);
    assert_eq!(ren.get("RENAMED_unencrypted"), Some("visible in clear"));
    let drop =
        secrets::decrypt_to_dotenv(&dir.join("undetected-comment-drop.enc.env"), &ids).unwrap();
    assert!(!drop.contains('#'));
}

/// sops 3.7 wrote metadata lines unsorted; any order (even before the data) must work.
#[test]
fn metadata_in_any_order_still_decrypts() {
    let text = read(&credentials().join("common.enc.env"));
    let (meta, data): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("sops_"));
    let want = secrets::decrypt_str(&text, &one_id(0)).unwrap();
    let mut reversed = meta.clone();
    reversed.reverse();
    let shuffled_37 = [data.clone(), reversed.clone()].concat().join("\n");
    let meta_first = [reversed, data.clone()].concat().join("\n");
    let mut interleaved = Vec::new();
    for (i, d) in data.iter().enumerate() {
        interleaved.push(*d);
        if let Some(m) = meta.get(i) {
            interleaved.push(m);
        }
    }
    for variant in [shuffled_37, meta_first, interleaved.join("\n")] {
        let got = secrets::decrypt_str(&variant, &one_id(0)).unwrap();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want.iter().collect::<Vec<_>>()
        );
    }
}

#[test]
fn other_formats_are_rejected_cleanly() {
    for name in ["common.enc.yaml", "common.enc.json"] {
        let err = secrets::decrypt_file(&credentials().join(name), &both_ids()).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn load_env_merges_common_then_env() {
    let s = secrets::load_env(&credentials(), "test", &both_ids()).unwrap();
    assert_eq!(s.get("TF_VAR_environment"), Some("test"));
    assert_eq!(s.get("OS_USERNAME"), Some("deployer"));
    assert_eq!(s.names().next(), Some("TF_VAR_os_password"));
}
