//! One SSH target (user, host, port, pinned known_hosts) and what the deployer does with it:
//! run a remote command, write a file with a given mode, copy files, open a terminal.
//! Always `BatchMode=yes` and `StrictHostKeyChecking=yes`: no prompts, no blind trust.

use std::path::{Path, PathBuf};

use crate::process::{Cmd, CmdError, CmdOutput};
use crate::redact::Redactor;

/// ssh's own exit code when the connection (not the remote command) failed.
const SSH_CONNECTION_FAILED: i32 = 255;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "the host key of {host} does not match the one pinned in {known_hosts}. If the instance \
         was recreated, remove that file (or run `deployer down <env>`) and connect again; \
         otherwise someone may be in the middle: stop and check the key in the OVH console"
    )]
    HostKeyMismatch { host: String, known_hosts: PathBuf },
    #[error("cannot connect to {target}: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("on {target}: {source}")]
    Remote {
        target: String,
        #[source]
        source: CmdError,
    },
}

/// How to reach the instance.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Private key to use (`-i`); `None` = the operator's agent and ssh config.
    pub identity: Option<PathBuf>,
    /// The env's pinned host keys.
    pub known_hosts: PathBuf,
    /// Seconds before a connection attempt gives up.
    pub connect_timeout: u32,
}

/// Quotes a word for the remote shell.
pub fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", s.replace('\0', "").replace('\'', "'\\''")))
}

impl SshTarget {
    /// `user@host:port` as shown to the operator.
    pub fn display(&self) -> String {
        if self.port == 22 {
            format!("{}@{}", self.user, self.host)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }

    /// "sudo -n " when the remote user is not root.
    pub fn sudo(&self) -> &'static str {
        if self.user == "root" {
            ""
        } else {
            "sudo -n "
        }
    }

    fn options(&self) -> Vec<String> {
        let mut o = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "ServerAliveInterval=15".into(),
        ];
        if let Some(id) = &self.identity {
            o.extend([
                "-i".into(),
                id.display().to_string(),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        o
    }

    fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// `ssh ... user@host -- <remote>`.
    pub fn command(&self, remote: &str) -> Cmd {
        Cmd::new("ssh")
            .args(self.options())
            .args(["-p".to_owned(), self.port.to_string()])
            .arg(self.destination())
            .arg("--")
            .arg(remote)
    }

    /// An interactive session (`-t`), optionally running `remote`.
    pub fn interactive(&self, remote: Option<&str>) -> Cmd {
        let c = Cmd::new("ssh")
            .args(self.options())
            .args(["-t".to_owned(), "-p".to_owned(), self.port.to_string()])
            .arg(self.destination());
        match remote {
            Some(r) => c.arg("--").arg(r),
            None => c,
        }
    }

    fn classify(&self, out: &CmdOutput, cmd: &Cmd, redactor: &Redactor) -> SshError {
        let stderr = out.stderr.as_str();
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("Host key verification failed")
        {
            return SshError::HostKeyMismatch {
                host: self.host.clone(),
                known_hosts: self.known_hosts.clone(),
            };
        }
        if out.status.code() == Some(SSH_CONNECTION_FAILED) {
            let detail = stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("ssh exited with 255")
                .trim();
            return SshError::Unreachable {
                target: self.display(),
                detail: redactor.redact(detail),
            };
        }
        SshError::Remote {
            target: self.display(),
            source: cmd.failure(redactor, out),
        }
    }

    /// Runs `remote` (a shell command line) and fails on a non-zero exit.
    pub fn run(&self, remote: &str, redactor: &Redactor) -> Result<CmdOutput, SshError> {
        self.run_with(remote, None, redactor, |_| {})
    }

    /// Runs `remote` with `stdin`, passing each output line to `on_line`.
    pub fn run_with(
        &self,
        remote: &str,
        stdin: Option<Vec<u8>>,
        redactor: &Redactor,
        on_line: impl FnMut(&str),
    ) -> Result<CmdOutput, SshError> {
        let mut cmd = self.command(remote);
        if let Some(data) = stdin {
            cmd = cmd.stdin(data);
        }
        let out = cmd
            .run_unchecked_with(redactor, on_line)
            .map_err(|source| SshError::Remote {
                target: self.display(),
                source,
            })?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.classify(&out, &cmd, redactor))
        }
    }

    /// Runs `remote` and returns its output whatever its exit code; only a failed
    /// connection is an error.
    pub fn probe(&self, remote: &str, redactor: &Redactor) -> Result<CmdOutput, SshError> {
        let cmd = self.command(remote);
        let out = cmd
            .run_unchecked(redactor)
            .map_err(|source| SshError::Remote {
                target: self.display(),
                source,
            })?;
        if out.status.success() || out.status.code() != Some(SSH_CONNECTION_FAILED) {
            Ok(out)
        } else {
            Err(self.classify(&out, &cmd, redactor))
        }
    }

    /// Writes `content` to `path` on the host with `mode`, atomically, never readable by
    /// others in between (umask 077 while writing). Parent directories are created.
    pub fn write_file(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
        redactor: &Redactor,
    ) -> Result<(), SshError> {
        let p = Path::new(path);
        let dir = p
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| ".".into());
        let tmp = format!("{path}.deployer-tmp");
        let sudo = self.sudo();
        let script = format!(
            "set -e; umask 077; {sudo}mkdir -p {d}; {sudo}sh -c {inner}; {sudo}chmod {mode:o} {t}; {sudo}mv -f {t} {p}",
            d = quote(&dir),
            inner = quote(&format!("cat > {}", quote(&tmp))),
            t = quote(&tmp),
            p = quote(path),
        );
        self.run_with(&script, Some(content.to_vec()), redactor, |_| {})?;
        Ok(())
    }

    /// Runs `remote` with stdin from `input` and/or stdout into `output` (binary-safe, streamed:
    /// database dumps). stderr is kept for the error message.
    pub fn run_files(
        &self,
        remote: &str,
        input: Option<&Path>,
        output: Option<&Path>,
        redactor: &Redactor,
    ) -> Result<(), SshError> {
        let cmd = self.command(remote);
        crate::progress::detail(&format!("    $ {}", cmd.display(redactor)));
        let io_err = |source| SshError::Remote {
            target: self.display(),
            source: CmdError::Io {
                program: "ssh".into(),
                source,
            },
        };
        let mut c = cmd.std_command();
        c.stdin(match input {
            Some(p) => std::process::Stdio::from(std::fs::File::open(p).map_err(io_err)?),
            None => std::process::Stdio::null(),
        });
        c.stdout(match output {
            Some(p) => std::process::Stdio::from(std::fs::File::create(p).map_err(io_err)?),
            None => std::process::Stdio::null(),
        });
        c.stderr(std::process::Stdio::piped());
        let out = c.output().map_err(|source| SshError::Remote {
            target: self.display(),
            source: CmdError::Spawn {
                program: "ssh".into(),
                source,
            },
        })?;
        let out = CmdOutput {
            status: out.status,
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(self.classify(&out, &cmd, redactor))
        }
    }

    /// Reads a file from the host (`None` when it does not exist).
    pub fn read_file(&self, path: &str, redactor: &Redactor) -> Result<Option<String>, SshError> {
        let q = quote(path);
        let out = self.run(
            &format!(
                "if [ -e {q} ]; then {}cat {q}; else echo __deployer_absent__ >&2; fi",
                self.sudo()
            ),
            redactor,
        )?;
        if out.stderr.contains("__deployer_absent__") {
            Ok(None)
        } else {
            Ok(Some(out.stdout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        for s in ["plain", "two words", "it's", "$HOME;rm -rf /", "a\"b"] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(s))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn options_pin_host_keys() {
        let t = SshTarget {
            user: "ubuntu".into(),
            host: "203.0.113.9".into(),
            port: 22,
            identity: None,
            known_hosts: "/k/known_hosts.test".into(),
            connect_timeout: 5,
        };
        let shown = t.command("true").display(&Redactor::default());
        assert!(shown.contains("StrictHostKeyChecking=yes"), "{shown}");
        assert!(shown.contains("BatchMode=yes"), "{shown}");
        assert!(
            shown.contains("UserKnownHostsFile=/k/known_hosts.test"),
            "{shown}"
        );
        assert_eq!(t.sudo(), "sudo -n ");
    }
}
