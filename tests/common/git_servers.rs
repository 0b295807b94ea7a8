//! Real git servers on loopback for the daemon's remote tests: lighttpd running git
//! http-backend over HTTPS (a self-signed certificate) with basic auth, and OpenSSH's sshd
//! with a key pair and a known_hosts file. Both serve a bare repository the test pushes to.
//! `tests/git-servers.sh install` brings the packages; each server runs until it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GitServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn install() {
    let status = Command::new("bash").arg(super::root().join("tests/git-servers.sh")).arg("install").status().expect("bash runs");
    assert!(status.success(), "tests/git-servers.sh install failed");
}

fn run(command: &mut Command) {
    let out = command.output().expect("command runs");
    assert!(out.status.success(), "{command:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts a server on a port of its own. lighttpd and sshd cannot be handed a bound socket or
/// pick a port themselves, so a free port is chosen and may be taken by another process before
/// the server binds it: then the server exits, and another port is tried. The server counts as
/// listening when its own log says so (`listening`), not when a connect succeeds, which could
/// reach the process that took the port.
fn on_a_free_port(spawn: impl Fn(u16) -> Child, log: &Path, listening: &str) -> (Child, u16) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let _ = std::fs::remove_file(log);
        let mut child = spawn(port);
        let started = Instant::now();
        loop {
            if std::fs::read_to_string(log).unwrap_or_default().contains(listening) {
                return (child, port);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("the server exited five times:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

impl GitServer {
    /// HTTPS with basic auth (`user`:`password`) serving the bare repositories below `root`
    /// at `https://127.0.0.1:PORT/git/<name>`. The CA to trust is `ca_file()`.
    pub fn https(root: &Path, user: &str, password: &str) -> GitServer {
        install();
        let dir = tempfile::tempdir().expect("server dir");
        let d = dir.path();
        run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]).args(
            [
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                &d.join("key.pem").to_string_lossy(),
                "-out",
                &d.join("cert.pem").to_string_lossy(),
            ],
        ));
        let pem = [std::fs::read(d.join("cert.pem")).expect("cert"), std::fs::read(d.join("key.pem")).expect("key")].concat();
        std::fs::write(d.join("server.pem"), pem).expect("pem");
        std::fs::write(d.join("users"), format!("{user}:{password}\n")).expect("users");
        let config_file = dir.path().join("lighttpd.conf");
        let log = dir.path().join("error.log");
        let (d, root) = (d.display(), root.display());
        let (child, port) = on_a_free_port(
            |port| {
                let config = format!(
                    r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_openssl")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{root}"
server.errorlog = "{d}/error.log"
ssl.engine = "enable"
ssl.pemfile = "{d}/server.pem"
alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.set-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
  auth.backend = "plain"
  auth.backend.plain.userfile = "{d}/users"
  auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}}
"#
                );
                std::fs::write(&config_file, config).expect("config");
                Command::new("/usr/sbin/lighttpd")
                    .arg("-D")
                    .arg("-f")
                    .arg(&config_file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("lighttpd starts")
            },
            &log,
            "server started",
        );
        GitServer { child, dir, port }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// sshd accepting the key `client_key()` for the current user; `known_hosts()` lists its
    /// host key as `[127.0.0.1]:PORT`.
    pub fn ssh() -> GitServer {
        install();
        let dir = tempfile::tempdir().expect("server dir");
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(d.join(key)));
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let key_fields: Vec<&str> = host_key.split_whitespace().take(2).collect();
        // sshd's privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = d.join("sshd.log");
        let (child, port) = on_a_free_port(
            |port| {
                std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {}\n", key_fields.join(" "))).expect("known_hosts");
                let config = format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     StrictModes no\nUsePAM no\n",
                    d = d.display()
                );
                std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
                Command::new("/usr/sbin/sshd")
                    .args(["-D", "-e", "-f"])
                    .arg(d.join("sshd_config"))
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).expect("log"))
                    .spawn()
                    .expect("sshd starts")
            },
            &log,
            "Server listening on 127.0.0.1 port",
        );
        GitServer { child, dir, port }
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// A second known_hosts file that lists some other key for this server.
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let other = self.dir.path().join("other_key");
        run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other));
        let key = std::fs::read_to_string(other.with_extension("pub")).expect("other key");
        let fields: Vec<&str> = key.split_whitespace().take(2).collect();
        let file = self.dir.path().join("wrong_known_hosts");
        std::fs::write(&file, format!("[127.0.0.1]:{} {}\n", self.port, fields.join(" "))).expect("write");
        file
    }
}

/// The name of the user the tests run as, for SSH URLs.
pub fn user() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        let out = Command::new("id").arg("-un").output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}
