//! Age key lookup like sops (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, the
//! default keys file) and `init_key`. One test changes process environment variables, so
//! every test holds `ENV_LOCK`; the others use `KeyLookup` directly.

mod secrets_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Mutex;

use deployer::secrets::{self, KeyLookup, SecretsError};
use secrets_support::*;
use zeroize::Zeroizing;

static ENV_LOCK: Mutex<()> = Mutex::new(());

/// Every test here takes the lock: one of them changes the process environment, which
/// others read when they spawn `sh` for SOPS_AGE_KEY_CMD.
fn lock() -> std::sync::MutexGuard<'static, ()> {
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const R0: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
const R1: &str = "age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep";

fn key_lines() -> Vec<String> {
    std::fs::read_to_string(vectors().join("keys.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .map(str::to_owned)
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn inline_key_allows_several_per_line_and_comments() {
    let _guard = lock();
    let k = key_lines();
    let lookup = KeyLookup {
        age_key: Some(Zeroizing::new(format!("# mine\n{} {}\n", k[0], k[1]))),
        ..KeyLookup::default()
    };
    let ids = lookup.load().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids.recipients(), [R0, R1]);
    assert!(ids.sources().contains("SOPS_AGE_KEY"));
    assert!(!format!("{ids:?}").contains("AGE-SECRET-KEY"));
}

#[test]
fn every_source_is_pooled_in_sops_order() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let k = key_lines();
    let file = dir.path().join("file-keys.txt");
    write(
        &file,
        &format!("# created: x\n# public key: {R1}\n{}\n\n", k[1]),
    );
    let cmd_keys = dir.path().join("cmd-keys.txt");
    write(&cmd_keys, &format!("{}\n", k[0]));
    let xdg = dir.path().join("xdg");
    write(&xdg.join("sops/age/keys.txt"), &format!("{}\n", k[1]));
    let lookup = KeyLookup {
        age_key: Some(Zeroizing::new(k[0].clone())),
        key_file: Some(file.clone()),
        key_cmd: Some(format!("cat '{}'", cmd_keys.display())),
        xdg_config_home: Some(xdg.clone()),
        home: None,
    };
    let ids = lookup.load().unwrap();
    assert_eq!(ids.recipients(), [R0, R1, R0, R1]);
    let sources = ids.sources();
    let order: Vec<usize> = [
        "SOPS_AGE_KEY,",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "xdg/sops/age/keys.txt",
    ]
    .iter()
    .map(|s| {
        sources
            .find(s)
            .unwrap_or_else(|| panic!("{s} not in {sources}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{sources}");
}

#[test]
fn default_file_under_home_config() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join(".config/sops/age/keys.txt"),
        &format!("{}\n", key_lines()[0]),
    );
    let lookup = KeyLookup {
        home: Some(dir.path().to_path_buf()),
        ..KeyLookup::default()
    };
    assert_eq!(lookup.load().unwrap().recipients(), [R0]);
    // Decrypts the vectors with the key found there.
    let ids = lookup.load().unwrap();
    assert!(secrets::decrypt_file(&credentials().join("common.enc.env"), &ids).is_ok());
}

#[test]
fn nothing_found_lists_every_place_looked() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let lookup = KeyLookup {
        home: Some(dir.path().to_path_buf()),
        ..KeyLookup::default()
    };
    let err = lookup.load().unwrap_err();
    assert!(matches!(err, SecretsError::NoIdentity { .. }));
    let msg = err.to_string();
    for place in [
        "SOPS_AGE_KEY ",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        ".config/sops/age/keys.txt",
    ] {
        assert!(msg.contains(place), "{place} missing from: {msg}");
    }
}

#[test]
fn broken_sources_are_errors() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let missing = KeyLookup {
        key_file: Some(dir.path().join("nope.txt")),
        ..KeyLookup::default()
    };
    let err = missing.load().unwrap_err();
    assert!(matches!(err, SecretsError::Read { .. }));
    assert!(err.to_string().contains("nope.txt"));

    let failing = KeyLookup {
        key_cmd: Some("echo AGE-SECRET-KEY-1LEAKED; exit 3".to_owned()),
        ..KeyLookup::default()
    };
    let err = failing.load().unwrap_err();
    assert!(matches!(err, SecretsError::KeyCommand { .. }), "{err}");
    assert!(!err.to_string().contains("LEAKED"));

    let garbage = KeyLookup {
        age_key: Some(Zeroizing::new("AGE-SECRET-KEY-1SECRETBUTBROKEN".to_owned())),
        ..KeyLookup::default()
    };
    let err = garbage.load().unwrap_err();
    assert!(matches!(err, SecretsError::BadIdentity { .. }));
    assert!(!err.to_string().contains("SECRETBUTBROKEN"));
}

#[test]
fn load_identities_reads_the_process_environment() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let k = key_lines();
    let file = dir.path().join("k.txt");
    write(&file, &format!("{}\n", k[1]));
    let vars = [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "XDG_CONFIG_HOME",
        "HOME",
    ];
    let saved: Vec<_> = vars.iter().map(|v| (v, std::env::var_os(v))).collect();
    for v in vars {
        std::env::remove_var(v);
    }
    std::env::set_var("HOME", dir.path());

    let err = secrets::load_identities().unwrap_err();
    assert!(matches!(err, SecretsError::NoIdentity { .. }), "{err}");

    std::env::set_var("SOPS_AGE_KEY_FILE", &file);
    let ids = secrets::load_identities().unwrap();
    assert_eq!(ids.recipients(), [R1]);

    std::env::set_var("SOPS_AGE_KEY", &k[0]);
    std::env::set_var("SOPS_AGE_KEY_CMD", format!("cat '{}'", file.display()));
    let ids = secrets::load_identities().unwrap();
    assert_eq!(ids.recipients(), [R0, R1, R1]);

    // An empty variable counts as unset.
    std::env::set_var("SOPS_AGE_KEY_FILE", "");
    std::env::remove_var("SOPS_AGE_KEY_CMD");
    assert_eq!(secrets::load_identities().unwrap().recipients(), [R0]);

    std::env::remove_var("SOPS_AGE_KEY");
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("xdg"));
    write(
        &dir.path().join("xdg/sops/age/keys.txt"),
        &format!("{}\n", k[1]),
    );
    assert_eq!(secrets::load_identities().unwrap().recipients(), [R1]);

    for (v, old) in saved {
        match old {
            Some(val) => std::env::set_var(v, val),
            None => std::env::remove_var(v),
        }
    }
}

#[test]
fn init_key_writes_a_private_key_once() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("cfg/sops/age/keys.txt");
    let recipient = secrets::init_key(&keys).unwrap();
    assert!(recipient.starts_with("age1"));
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let parent_mode = std::fs::metadata(keys.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(parent_mode, 0o700);
    let ids = secrets::Identities::from_file(&keys).unwrap();
    assert_eq!(ids.recipients(), std::slice::from_ref(&recipient));
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(text.contains(&format!("# public key: {recipient}")));

    let before = std::fs::read(&keys).unwrap();
    let err = secrets::init_key(&keys).unwrap_err();
    assert!(matches!(err, SecretsError::KeyFileExists { .. }));
    assert!(err.to_string().contains("keys.txt"));
    assert_eq!(std::fs::read(&keys).unwrap(), before);

    // The new key works end to end.
    let enc = secrets::encrypt_dotenv("A=1\n", &[recipient]).unwrap();
    assert_eq!(
        secrets::decrypt_str(&enc, &ids).unwrap().get("A"),
        Some("1")
    );
}
