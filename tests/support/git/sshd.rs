//! A real OpenSSH server (Debian's `openssh-server`, installed by `scripts/setup`) for one
//! test: its own config, host key, client key and authorized_keys in a temporary
//! directory, run as a non-daemon child (`sshd -D -e`) on a free loopback port, stopped
//! when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use super::{LIMIT, free_port, missing_tool};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddrV4,
    /// The `key-type base64` of the server's host key.
    pub host_key: String,
    /// The client's private key, authorized on the server.
    pub client_key: PathBuf,
    pub user: String,
    log: Arc<Mutex<Vec<String>>>,
    child: Child,
}

/// Writes an unencrypted ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "modelship-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

/// `key-type base64` of the public key at `path.pub`.
pub fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Sshd {
    /// Starts sshd on `127.0.0.1` and a free port, or returns `None` (after printing why)
    /// when OpenSSH is not installed.
    pub fn start() -> Option<Sshd> {
        Self::start_on(Ipv4Addr::LOCALHOST, None)
    }

    /// Starts sshd on `ip` and `port` (a free one when `None`).
    pub fn start_on(ip: Ipv4Addr, port: Option<u16>) -> Option<Sshd> {
        if missing_tool(SSHD, "OpenSSH's sshd (apt-get install openssh-server)")
            || missing_tool("/usr/bin/ssh-keygen", "ssh-keygen (openssh-client)")
        {
            return None;
        }
        privilege_separation_dir();
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("host_ed25519");
        let client_key = dir.path().join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("{}\n", public_key(&client_key)),
        )
        .unwrap();
        let user = current_user();
        let port = port.unwrap_or_else(|| free_port(ip));
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress {ip}\nHostKey {host}\nPidFile {pid}\n\
                 AuthorizedKeysFile {keys}\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowUsers {user}\nLogLevel INFO\n",
                host = host_key.display(),
                pid = dir.path().join("sshd.pid").display(),
                keys = dir.path().join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (listening_tx, listening) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server listening on") {
                    let _ = listening_tx.send(());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let ready = listening.recv_timeout(LIMIT);
        let sshd = Sshd {
            addr: SocketAddrV4::new(ip, port),
            host_key: public_key(&host_key),
            client_key,
            user,
            log,
            child,
            dir,
        };
        assert!(ready.is_ok(), "sshd did not listen:\n{}", sshd.log());
        Some(sshd)
    }

    /// What sshd wrote so far (for failure messages).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `ssh://user@ip:port/<absolute path>` of a repository on this machine.
    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://{}@{}{}", self.user, self.addr, repo.display())
    }

    /// What `ssh-keyscan -p PORT [-H] IP` prints for this server: the real tool's
    /// known_hosts lines.
    pub fn keyscan(&self, hashed: bool) -> String {
        let mut command = Command::new("ssh-keyscan");
        command.args(["-t", "ed25519", "-p", &self.addr.port().to_string()]);
        if hashed {
            command.arg("-H");
        }
        let out = command
            .arg(self.addr.ip().to_string())
            .output()
            .expect("ssh-keyscan runs");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(&self.host_key),
            "ssh-keyscan found no host key:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sshd started as root needs its privilege separation directory, which Debian's service
/// unit creates at boot (`RuntimeDirectory=sshd`); a container that never ran the service
/// lacks it.
fn privilege_separation_dir() {
    if current_user() == "root" {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
