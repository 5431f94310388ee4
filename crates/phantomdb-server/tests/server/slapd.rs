//! A real OpenLDAP `slapd` (Debian packages `slapd` and `ldap-utils`) for one test: its
//! configuration, TLS certificate and directory (`slapadd`) in a temporary directory, serving
//! `ldap://` (with StartTLS) and `ldaps://` on free loopback ports. Stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::tls_files;

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// Its administrator (the search account of search-then-bind rules).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PW: &str = "ldap-admin-pw";

/// The entries: two people and a group holding only alice.
const ENTRIES: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: alice-ldap-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
userPassword: bob-ldap-pw

dn: cn=dbusers,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: dbusers
member: uid=alice,ou=people,dc=example,dc=org
";

/// A running slapd.
pub struct Slapd {
    /// `ldap://127.0.0.1:port` (StartTLS available).
    pub url: String,
    /// `ldaps://127.0.0.1:port`.
    pub ldaps_url: String,
    /// The CA (here: the self-signed certificate itself) clients verify the server with.
    pub ca_file: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Slapd {
    /// Configures, fills and starts a directory; returns once it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).expect("db dir");
        let (cert, key) = tls_files(d);
        let conf = d.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {pid}\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 TLSCertificateFile {cert}\n\
                 TLSCertificateKeyFile {key}\n\
                 database mdb\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PW}\n\
                 directory {db}\n\
                 maxsize 10485760\n",
                pid = d.join("slapd.pid").display(),
                cert = cert.display(),
                key = key.display(),
                db = d.join("db").display(),
            ),
        )
        .expect("slapd.conf");
        let ldif = d.join("entries.ldif");
        std::fs::write(&ldif, ENTRIES).expect("ldif");
        let added = Command::new("slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("slapadd (Debian package slapd) must be installed");
        assert!(
            added.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        let (ldap, ldaps) = (free_port(), free_port());
        let url = format!("ldap://127.0.0.1:{ldap}");
        let ldaps_url = format!("ldaps://127.0.0.1:{ldaps}");
        let log = std::fs::File::create(d.join("slapd.log")).expect("log file");
        // `-d 0`: stay in the foreground (a child this test owns and stops), logging nothing.
        let child = Command::new("slapd")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("{url}/ {ldaps_url}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd (Debian package slapd) must be installed");
        let mut slapd = Self {
            url,
            ldaps_url,
            ca_file: cert,
            child: Some(child),
            dir,
        };
        slapd.wait_until_listening(ldap);
        slapd
    }

    fn wait_until_listening(&mut self, port: u16) {
        let start = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("slapd exited with {status}: {}", self.log());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "slapd did not listen on {port}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What slapd wrote on standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Stops slapd (SIGTERM, then waits for it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signals our own child by its pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on (the OS's pick).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
