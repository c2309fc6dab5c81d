//! `edit_file`: decrypt to a private temp file, run the editor, re-encrypt for the
//! `.sops.yaml` recipients, replace atomically; unchanged -> untouched; invalid -> untouched
//! and the plaintext removed.

mod secrets_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use deployer::secrets::{self, EditOutcome, SecretsError};
use secrets_support::*;

const R0: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A project with `.sops.yaml` (recipient 0) and `credentials/test.enc.env`.
    fn new(plain: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".sops.yaml"),
            format!(
                "creation_rules:\n  - path_regex: credentials/.*\\.enc\\.env$\n    age: {R0}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("credentials")).unwrap();
        let p = Self { dir };
        if !plain.is_empty() {
            std::fs::write(
                p.file(),
                secrets::encrypt_dotenv(plain, &[R0.to_owned()]).unwrap(),
            )
            .unwrap();
        }
        p
    }
    fn file(&self) -> PathBuf {
        self.dir.path().join("credentials/test.enc.env")
    }
    fn sops_yaml(&self) -> PathBuf {
        self.dir.path().join(".sops.yaml")
    }
    /// An editor command running `body` (a shell snippet; `$1` is the file) and logging
    /// the file's path and modes into `log/`.
    fn editor(&self, body: &str) -> String {
        let log = self.dir.path().join("log");
        std::fs::create_dir_all(&log).unwrap();
        let script = self.dir.path().join("editor.sh");
        std::fs::write(
            &script,
            format!(
                "set -e\necho \"$1\" > '{l}/path'\nstat -c %a \"$1\" > '{l}/mode'\nstat -c %a \"$(dirname \"$1\")\" > '{l}/dirmode'\n{body}\n",
                l = log.display()
            ),
        )
        .unwrap();
        format!("sh '{}'", script.display())
    }
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("log").join(name))
            .unwrap()
            .trim()
            .to_owned()
    }
    fn edit(&self, editor: &str) -> Result<EditOutcome, SecretsError> {
        secrets::edit_file(&self.file(), &self.sops_yaml(), &one_id(0), editor)
    }
}

fn assert_plaintext_gone(p: &Project) {
    let tmp = PathBuf::from(p.log("path"));
    assert!(!tmp.exists(), "plaintext left at {}", tmp.display());
    assert!(!tmp.parent().unwrap().exists(), "private dir left behind");
}

#[test]
fn edit_changes_value_in_private_temp_file_and_keeps_mode() {
    let p = Project::new("# db\nA=old\nB=keep\n");
    std::fs::set_permissions(p.file(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = p
        .edit(&p.editor("sed -i 's/^A=.*/A=changed/' \"$1\""))
        .unwrap();
    assert_eq!(out, EditOutcome::Updated);
    assert_eq!(p.log("mode"), "600");
    assert_eq!(p.log("dirmode"), "700");
    assert!(p.log("path").ends_with("/test.env"));
    assert_plaintext_gone(&p);
    let s = secrets::decrypt_file(&p.file(), &one_id(0)).unwrap();
    assert_eq!(s.get("A"), Some("changed"));
    assert_eq!(s.get("B"), Some("keep"));
    let mode = std::fs::metadata(p.file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let text = secrets::decrypt_to_dotenv(&p.file(), &one_id(0)).unwrap();
    assert_eq!(text.as_str(), "# db\nA=changed\nB=keep\n");
    // The real sops agrees.
    let keyfile = p.dir.path().join("key.txt");
    let k = std::fs::read_to_string(vectors().join("keys.txt")).unwrap();
    std::fs::write(&keyfile, k).unwrap();
    let out = Command::new(sops_binary())
        .env("SOPS_AGE_KEY_FILE", &keyfile)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .args([
            "--decrypt",
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
        ])
        .arg(p.file())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "# db\nA=changed\nB=keep\n"
    );
}

#[test]
fn unchanged_content_leaves_the_file_untouched() {
    let p = Project::new("A=1\n");
    let before = std::fs::read(p.file()).unwrap();
    let mtime = std::fs::metadata(p.file()).unwrap().modified().unwrap();
    assert_eq!(p.edit(&p.editor("true")).unwrap(), EditOutcome::Unchanged);
    assert_eq!(std::fs::read(p.file()).unwrap(), before);
    assert_eq!(
        std::fs::metadata(p.file()).unwrap().modified().unwrap(),
        mtime
    );
    assert_plaintext_gone(&p);
}

#[test]
fn invalid_edit_is_refused_and_original_kept() {
    let p = Project::new("A=1\n");
    let before = std::fs::read(p.file()).unwrap();
    let err = p
        .edit(&p.editor("echo 'hunter2 without equals' >> \"$1\""))
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::EditedInvalid { source, .. } if matches!(**source, SecretsError::MissingEquals { line: 2, .. })),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"));
    assert!(err.to_string().contains("test.enc.env"));
    assert_eq!(std::fs::read(p.file()).unwrap(), before);
    assert_plaintext_gone(&p);

    let err = p
        .edit(&p.editor("echo 'sops_mac=x' >> \"$1\""))
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::EditedInvalid { source, .. } if matches!(**source, SecretsError::ReservedName { .. })),
        "{err}"
    );
    let err = p.edit(&p.editor("echo 'A=2' >> \"$1\"")).unwrap_err();
    assert!(
        matches!(&err, SecretsError::EditedInvalid { source, .. } if matches!(**source, SecretsError::DuplicateName { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(p.file()).unwrap(), before);
}

#[test]
fn failing_editor_keeps_original_and_removes_plaintext() {
    let p = Project::new("A=1\n");
    let before = std::fs::read(p.file()).unwrap();
    let err = p.edit(&p.editor("echo B=2 >> \"$1\"; exit 4")).unwrap_err();
    assert!(matches!(err, SecretsError::Editor { .. }), "{err}");
    assert_eq!(std::fs::read(p.file()).unwrap(), before);
    assert_plaintext_gone(&p);
}

#[test]
fn new_file_is_created_private() {
    let p = Project::new("");
    assert!(!p.file().exists());
    assert_eq!(p.edit(&p.editor("true")).unwrap(), EditOutcome::Unchanged);
    assert!(!p.file().exists());
    let out = p
        .edit(&p.editor("printf 'NEW=1\\nPUBLIC_unencrypted=x\\n' > \"$1\""))
        .unwrap();
    assert_eq!(out, EditOutcome::Created);
    let mode = std::fs::metadata(p.file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let s = secrets::decrypt_file(&p.file(), &one_id(0)).unwrap();
    assert_eq!(s.get("NEW"), Some("1"));
    // No leftovers beside the file from the atomic write.
    let names: Vec<_> = std::fs::read_dir(p.file().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn edit_keeps_the_files_crypt_rule() {
    let p = Project::new("");
    let src = credentials().join("regex.enc.env");
    std::fs::copy(&src, p.file()).unwrap();
    std::fs::set_permissions(p.file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = p
        .edit(&p.editor("sed -i 's/^OS_USERNAME=.*/OS_USERNAME=someone/' \"$1\""))
        .unwrap();
    assert_eq!(out, EditOutcome::Updated);
    let text = std::fs::read_to_string(p.file()).unwrap();
    assert!(text.contains("\nOS_USERNAME=someone\n"), "{text}");
    assert!(text.contains("sops_encrypted_regex=^(TF_VAR_|AWS_SECRET_)\n"));
    let s = secrets::decrypt_file(&p.file(), &one_id(0)).unwrap();
    assert_eq!(s.get("TF_VAR_os_password"), Some("s3cr3t-p@ss=word"));
}

#[test]
fn edit_with_the_wrong_key_fails_before_the_editor_runs() {
    let p = Project::new("A=1\n");
    let marker = p.dir.path().join("ran");
    let editor = format!("touch '{}'", marker.display());
    let err = secrets::edit_file(&p.file(), &p.sops_yaml(), &stranger(), &editor).unwrap_err();
    assert!(matches!(err, SecretsError::NoMatchingIdentity { .. }));
    assert!(!Path::new(&marker).exists());
}
