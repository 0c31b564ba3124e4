//! Helpers for the cross-crate tests in `tests/tests/`: throwaway regions (a CA in a temporary
//! folder and node credentials written to disk as a node would have them) and log capture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use giasync_certs::identity::NodeIdentity;
use giasync_certs::pki::{Pki, Validity};
use giasync_node::transport::TlsMaterial;
use giasync_shared::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};
use time::OffsetDateTime;

/// A CA in a temporary folder.
#[derive(Debug)]
pub struct TestRegion {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
}

/// A node's files on disk.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub dir: PathBuf,
    pub identity: NodeIdentity,
    pub serial: u64,
}

impl NodeFiles {
    pub fn cert(&self) -> PathBuf {
        self.dir.join("node.crt")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("node.key")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    /// Loads the files as the node would.
    pub fn material(&self) -> TlsMaterial {
        TlsMaterial::load(&self.cert(), &self.key(), &self.ca(), &self.crl())
            .expect("node files load")
    }
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn rcoi(region: &str) -> NodeIdentity {
    let region = RegionCode::new(region).expect("region code");
    NodeIdentity::new(region, OrgCode::Rcoi(region), None).expect("identity")
}

pub fn municipality(region: &str, code: &str) -> NodeIdentity {
    let org = OrgCode::Municipality(MunicipalityCode::new(code).expect("code"));
    NodeIdentity::new(RegionCode::new(region).expect("region code"), org, None).expect("identity")
}

pub fn school(region: &str, municipality: &str, code: &str) -> NodeIdentity {
    NodeIdentity::new(
        RegionCode::new(region).expect("region code"),
        OrgCode::parse(NodeRole::School, code).expect("code"),
        Some(MunicipalityCode::new(municipality).expect("code")),
    )
    .expect("identity")
}

impl TestRegion {
    pub fn new(region: &str) -> Self {
        TestRegion::named(region, "Тестовый регион")
    }

    /// A CA with its own name: two CAs of one name and region differ only in their keys.
    pub fn named(region: &str, name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::init(
            &dir.path().join("pki"),
            RegionCode::new(region).expect("region"),
            name,
            now(),
        )
        .expect("CA");
        TestRegion { dir, pki }
    }

    /// Issues a node certificate valid from `validity` and writes the node's files.
    pub fn node_with(&mut self, identity: NodeIdentity, validity: Validity) -> NodeFiles {
        let dir = self
            .dir
            .path()
            .join(format!("node-{}", self.pki.issued().len() + 2));
        let serial = self
            .pki
            .write_node_files(&dir, identity, "127.0.0.1", validity)
            .expect("node files");
        NodeFiles {
            dir,
            identity,
            serial,
        }
    }

    /// Issues a node certificate valid for a year from now.
    pub fn node(&mut self, identity: NodeIdentity) -> NodeFiles {
        self.node_with(identity, Validity::days_from(now(), 365).expect("validity"))
    }

    /// Revokes `serial` and gives every listed node the new revocation list.
    pub fn revoke(&mut self, serial: u64, nodes: &[&NodeFiles]) {
        self.pki.revoke(serial, "test", now()).expect("revoke");
        for node in nodes {
            std::fs::write(node.crl(), self.pki.crl_pem().expect("crl")).expect("write");
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Log lines captured from `tracing` on the current thread.
#[derive(Clone, Debug, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's logs until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A demo region (fast key derivation) in `dir`, its nodes on ports from `base_port`.
pub fn demo_region(dir: &Path, base_port: u16, schools_per_municipality: u16) {
    let options = giasync_certs::demo::DemoOptions {
        out: dir.to_path_buf(),
        municipalities: 1,
        schools_per_municipality,
        base_port,
        kdf: giasync_certs::keyfile::KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
    };
    giasync_certs::demo::demo(&options, now()).expect("demo region");
}

/// A demo node's configuration with its listen address on a free port and its upstreams at
/// `upstreams` (the rest dropped).
pub fn node_config(
    dir: &Path,
    code: &str,
    upstreams: &[std::net::SocketAddr],
) -> giasync_shared::config::NodeConfig {
    let mut config = giasync_shared::config::NodeConfig::load(&dir.join(code).join("node.toml"))
        .expect("node.toml");
    config.node.listen = "127.0.0.1:0".parse().expect("address");
    config.upstreams.truncate(upstreams.len());
    for (u, addr) in config.upstreams.iter_mut().zip(upstreams) {
        u.addr = *addr;
    }
    config
}

/// A demo region (fast key derivation) in `dir`, as `region.json` lists it: nodes and people
/// with their key files and PINs.
pub fn demo_region_listed(
    dir: &Path,
    base_port: u16,
    schools_per_municipality: u16,
) -> giasync_certs::demo::Region {
    demo_region(dir, base_port, schools_per_municipality);
    let text = std::fs::read_to_string(dir.join("region.json")).expect("region.json");
    serde_json::from_str(&text).expect("region.json parses")
}

/// `GET path` from a local web server; the status code and body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Bodies are small here; a chunked body is de-chunked naively.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(rest.get(..n).unwrap_or(""));
        body = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Headless Chromium (Debian's `chromium`, which `.ci/test` installs), started as the
/// workplace requires: no sandbox as root, no background networking, and every host name
/// resolving to nothing but loopback, so a page that needed the internet would fail to load.
pub fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("a Chromium profile folder");
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs (bash .ci/test installs Debian's chromium)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Where tests keep screenshots for CI artefacts: `target/screenshots/`.
pub fn screenshot_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}
