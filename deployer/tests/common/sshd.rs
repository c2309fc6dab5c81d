//! A real OpenSSH server standing in for the instance: `/usr/sbin/sshd -D -e` on 127.0.0.1 and
//! a free port, with its own host key, config and authorized_keys in a temp dir, and a client
//! key for the deployer. `bin/` in the temp dir comes first on the session's PATH so that tests
//! can put stand-in tools there (there is no Docker engine on the test machine: a `docker`
//! script records its arguments instead).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    config: PathBuf,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deployer-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

impl Sshd {
    /// Prepares keys and config without starting the server (for wait-loop tests).
    pub fn prepare() -> Self {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd is missing: apt-get install -y openssh-server"
        );
        super::require_tool("ssh", "apt-get install -y openssh-client");
        super::require_tool("ssh-keygen", "apt-get install -y openssh-client");
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::create_dir_all(d.join("remote")).unwrap();
        let port = super::free_port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
                 StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n\
                 SetEnv PATH={d}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n",
                d = d.display()
            ),
        )
        .unwrap();
        let kh = format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(d.join("host_key.pub"))
                .unwrap()
                .trim()
        );
        std::fs::write(d.join("known_hosts"), format!("{kh}\n")).unwrap();
        Self {
            port,
            dir,
            child: None,
            config,
        }
    }

    pub fn start(mut self) -> Self {
        self.spawn();
        self
    }

    pub fn spawn(&mut self) {
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        assert!(
            super::wait_port(self.port, Duration::from_secs(10)),
            "sshd did not listen on {}",
            self.port
        );
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn identity(&self) -> PathBuf {
        self.path().join("client_key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.path().join("known_hosts")
    }

    /// The host key line ("ssh-ed25519 AAAA... comment").
    pub fn host_key(&self) -> String {
        std::fs::read_to_string(self.path().join("host_key.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// A directory standing in for /opt/accoreboot.
    pub fn remote_dir(&self) -> PathBuf {
        self.path().join("remote")
    }

    /// Installs a stand-in tool on the session's PATH.
    pub fn stub(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path().join("bin").join(name);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
