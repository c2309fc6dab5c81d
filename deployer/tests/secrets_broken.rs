//! Broken and unsupported input: each gives its own clear error, never a panic, never a
//! value in the message.

mod secrets_support;

use deployer::secrets::{self, SecretsError};
use secrets_support::*;

fn common() -> String {
    std::fs::read_to_string(credentials().join("common.enc.env")).unwrap()
}

/// Decrypts `content` with both test keys and checks the error leaks no plaintext value.
fn fails(content: &str) -> SecretsError {
    let err = secrets::decrypt_str(content, &both_ids()).unwrap_err();
    let msg = format!("{err} | {err:?}");
    let plain = std::fs::read_to_string(credentials().join("common.env")).unwrap();
    for (_, v) in plain_pairs(&plain) {
        // "deployer" is also a word of our own messages (`deployer secrets edit`).
        if v.len() > 3 && v != "deployer" {
            assert!(!msg.contains(&v), "error leaks a value: {msg}");
        }
    }
    err
}

fn replace_line(text: &str, prefix: &str, new: Option<&str>) -> String {
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with(prefix) {
            if let Some(n) = new {
                out.push(n.to_owned());
            }
        } else {
            out.push(l.to_owned());
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn missing_mac() {
    let t = replace_line(&common(), "sops_mac=", None);
    assert!(matches!(fails(&t), SecretsError::MissingMac { .. }));
    let t = replace_line(&common(), "sops_mac=", Some("sops_mac="));
    assert!(matches!(fails(&t), SecretsError::MissingMac { .. }));
}

#[test]
fn garbled_enc_syntax_and_bad_base64() {
    let t = common().replace(
        "OS_USERNAME=ENC[AES256_GCM,data:",
        "OS_USERNAME=ENC[AES256_GCM,dta:",
    );
    let err = fails(&t);
    assert!(
        matches!(&err, SecretsError::MalformedValue { name, line: 4, .. } if name == "OS_USERNAME"),
        "{err}"
    );
    let t = common().replace(
        "OS_USERNAME=ENC[AES256_GCM,data:MhRU5oeM/fw=",
        "OS_USERNAME=ENC[AES256_GCM,data:Mh!!5oeM/fw=",
    );
    let err = fails(&t);
    assert!(
        matches!(err, SecretsError::MalformedValue { reason, .. } if reason.contains("base64"))
    );
    let t = common().replace(
        "OS_USERNAME=ENC[AES256_GCM,data:MhRU5oeM/fw=",
        "OS_USERNAME=plain-text-now",
    );
    assert!(matches!(fails(&t), SecretsError::MalformedValue { .. }));
    let t = common().replace(
        "OS_USERNAME=ENC[AES256_GCM,data:MhRU5oeM/fw=",
        "OS_USERNAME=ENC[AES256_GCM,data:MhRU5oeM/fx=",
    );
    assert!(matches!(
        fails(&t),
        SecretsError::TamperedValue { .. } | SecretsError::MalformedValue { .. }
    ));
    let t = common().replace("type:str]\nOS_USERNAME", "type:int]\nOS_USERNAME");
    assert!(matches!(
        fails(&t),
        SecretsError::UnsupportedValueType { .. }
    ));
}

#[test]
fn altered_encrypted_comment_is_refused() {
    let t = common().replacen("#ENC[AES256_GCM,data:aKiY", "#ENC[AES256_GCM,data:bKiY", 1);
    assert!(matches!(
        fails(&t),
        SecretsError::TamperedComment { line: 1, .. }
    ));
}

#[test]
fn wrong_key_lists_the_recipients() {
    let err = secrets::decrypt_str(&common(), &stranger()).unwrap_err();
    assert!(
        matches!(err, SecretsError::NoMatchingIdentity { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"),
        "{msg}"
    );
    assert!(msg.contains("stranger"), "{msg}");
}

#[test]
fn empty_plain_and_non_utf8_files() {
    assert!(matches!(fails(""), SecretsError::Empty { .. }));
    assert!(matches!(fails("\n\n"), SecretsError::Empty { .. }));
    assert!(matches!(
        fails("A=1\n#c\n"),
        SecretsError::NotEncrypted { .. }
    ));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bin.enc.env");
    std::fs::write(&f, [b'A', b'=', 0xff, 0xfe, b'\n']).unwrap();
    let err = secrets::decrypt_file(&f, &both_ids()).unwrap_err();
    assert!(matches!(err, SecretsError::NotUtf8 { .. }));
    assert!(err.to_string().contains("bin.enc.env"));
    let err = secrets::decrypt_file(&dir.path().join("absent.enc.env"), &both_ids()).unwrap_err();
    assert!(matches!(err, SecretsError::Read { .. }));
}

#[test]
fn line_without_equals_and_huge_lines() {
    let t = replace_line(&common(), "OS_USERNAME=", Some("OS_USERNAME"));
    assert!(matches!(
        fails(&t),
        SecretsError::MissingEquals { line: 4, .. }
    ));
    let huge = format!("A={}\n{}", "x".repeat(100_000), common());
    assert!(matches!(
        fails(&huge),
        SecretsError::LineTooLong { line: 1, .. }
    ));
    let many = format!("{}{}", "A=xxxxxxxxxxxxxxxx\n".repeat(300_000), common());
    assert!(matches!(fails(&many), SecretsError::TooLarge { .. }));
}

#[test]
fn metadata_problems() {
    let c = common();
    let t = format!("{c}sops_frobnicate=1\n");
    assert!(
        matches!(fails(&t), SecretsError::UnknownMetadata { name, .. } if name == "sops_frobnicate")
    );
    let t = format!("{c}sops_version=3.11.0\n");
    assert!(matches!(fails(&t), SecretsError::DuplicateMetadata { .. }));
    let t = format!("{c}OS_USERNAME=x\n");
    assert!(matches!(fails(&t), SecretsError::DuplicateName { .. }));
    let t = replace_line(
        &c,
        "sops_lastmodified=",
        Some("sops_lastmodified=yesterday"),
    );
    assert!(
        matches!(fails(&t), SecretsError::InvalidMetadata { name, .. } if name == "sops_lastmodified")
    );
    let t = replace_line(&c, "sops_lastmodified=", None);
    assert!(matches!(fails(&t), SecretsError::MissingMetadata { .. }));
    let t = format!("{c}sops_encrypted_comment_regex=^x\n");
    assert!(matches!(fails(&t), SecretsError::UnsupportedRule { .. }));
    let t = format!("{c}sops_encrypted_regex=^x\n");
    assert!(matches!(fails(&t), SecretsError::InvalidMetadata { .. }));
    let t = replace_line(&c, "sops_age__list_0__map_recipient=", None);
    assert!(
        matches!(fails(&t), SecretsError::MissingMetadata { name, .. } if name.ends_with("recipient"))
    );
    let t = replace_line(
        &c,
        "sops_age__list_0__map_enc=",
        Some("sops_age__list_0__map_enc=not armored"),
    );
    assert!(matches!(fails(&t), SecretsError::AgePayload { .. }));
}

/// Strips the age entries and puts other key types in their place.
fn without_age(extra: &str) -> String {
    let c = replace_line(&common(), "sops_age__list_0__map_enc=", None);
    let c = replace_line(&c, "sops_age__list_0__map_recipient=", None);
    format!("{c}{extra}")
}

#[test]
fn non_age_key_types_each_get_their_own_error() {
    let pgp = without_age("sops_pgp__list_0__map_fp=FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\nsops_pgp__list_0__map_enc=-----BEGIN PGP MESSAGE-----\\nxx\\n-----END PGP MESSAGE-----\\n\nsops_pgp__list_0__map_created_at=2026-01-01T00:00:00Z\n");
    let err = fails(&pgp);
    assert!(matches!(err, SecretsError::PgpOnly { .. }), "{err}");
    let kms = without_age("sops_kms__list_0__map_arn=arn:aws:kms:eu-west-1:1:key/x\nsops_kms__list_0__map_enc=AQI=\nsops_gcp_kms__list_0__map_resource_id=projects/p\nsops_gcp_kms__list_0__map_enc=CiQ=\n");
    let err = fails(&kms);
    assert!(
        matches!(&err, SecretsError::CloudKmsOnly { services, .. } if services.contains("AWS KMS") && services.contains("GCP KMS")),
        "{err}"
    );
    let vault = without_age("sops_hc_vault__list_0__map_vault_address=https://v\nsops_azure_kv__list_0__map_vault_url=https://a\n");
    assert!(matches!(fails(&vault), SecretsError::CloudKmsOnly { .. }));
    let none = without_age("");
    assert!(matches!(fails(&none), SecretsError::MissingMetadata { .. }));
}

#[test]
fn post_quantum_and_plugin_recipients_and_identities() {
    let c = common();
    let pq = replace_line(
        &c,
        "sops_age__list_0__map_recipient=",
        Some("sops_age__list_0__map_recipient=age1pq1qqqqqqqqqq"),
    );
    let err = secrets::decrypt_str(&pq, &stranger()).unwrap_err();
    assert!(matches!(err, SecretsError::PostQuantumAge { .. }), "{err}");
    let plugin = replace_line(
        &c,
        "sops_age__list_0__map_recipient=",
        Some("sops_age__list_0__map_recipient=age1yubikey1qqqqqqq"),
    );
    let err = secrets::decrypt_str(&plugin, &stranger()).unwrap_err();
    assert!(matches!(err, SecretsError::PluginAge { .. }), "{err}");

    let err =
        secrets::Identities::parse("# x\nAGE-SECRET-KEY-PQ-1QQQQQQ\n", "test", false).unwrap_err();
    assert!(matches!(err, SecretsError::PostQuantumAge { .. }), "{err}");
    let err =
        secrets::Identities::parse("AGE-PLUGIN-YUBIKEY-1QQQQQQ\n", "test", false).unwrap_err();
    assert!(matches!(err, SecretsError::PluginAge { .. }), "{err}");
    let err =
        secrets::Identities::parse("AGE-SECRET-KEY-1NOTVALIDATALL\n", "test", false).unwrap_err();
    assert!(
        matches!(err, SecretsError::BadIdentity { line: 1, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("NOTVALID"));
}
