//! Helpers for the cross-crate tests in `tests/tests/`: throwaway regions (a CA in a temporary
//! folder and node credentials written to disk as a node would have them) and log capture.

pub mod fuzz;
pub mod webdriver;

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
    demo_region_serving(dir, base_port, schools_per_municipality, false);
}

/// [`demo_region`], its pages over HTTPS when `https`.
pub fn demo_region_serving(dir: &Path, base_port: u16, schools_per_municipality: u16, https: bool) {
    demo_region_made(dir, base_port, schools_per_municipality, https, now());
}

/// [`demo_region_serving`] as if made at `made`: its certificates and revocation list date
/// from then (for a past exam day whose sheets were signed on that day).
pub fn demo_region_made(
    dir: &Path,
    base_port: u16,
    schools_per_municipality: u16,
    https: bool,
    made: OffsetDateTime,
) {
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
        https,
        utc_offset: None,
    };
    giasync_certs::demo::demo(&options, made).expect("demo region");
}

/// A demo node's configuration with its listen address (and web pages) on free ports and its upstreams at
/// `upstreams` (the rest dropped).
pub fn node_config(
    dir: &Path,
    code: &str,
    upstreams: &[std::net::SocketAddr],
) -> giasync_shared::config::NodeConfig {
    let mut config = giasync_shared::config::NodeConfig::load(&dir.join(code).join("node.toml"))
        .expect("node.toml");
    config.node.listen = "127.0.0.1:0".parse().expect("address");
    // Web pages and the look-up, where configured, on free ports too (the handle tells which).
    let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    config.node.web = config.node.web.map(|_| any_port);
    config.node.lookup = config.node.lookup.map(|_| any_port);
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
    demo_region_listed_serving(dir, base_port, schools_per_municipality, false)
}

/// [`demo_region_listed`], its pages over HTTPS when `https`.
pub fn demo_region_listed_serving(
    dir: &Path,
    base_port: u16,
    schools_per_municipality: u16,
    https: bool,
) -> giasync_certs::demo::Region {
    demo_region_serving(dir, base_port, schools_per_municipality, https);
    region_listed(dir)
}

/// The demo region in `dir` as `region.json` lists it.
pub fn region_listed(dir: &Path) -> giasync_certs::demo::Region {
    let text = std::fs::read_to_string(dir.join("region.json")).expect("region.json");
    serde_json::from_str(&text).expect("region.json parses")
}

/// `GET path` from a local web server; the status code and body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(addr, "GET", path, "", "")
}

/// `POST path` of a JSON body to a local web server; the status code and body.
pub fn http_post_json(
    addr: std::net::SocketAddr,
    path: &str,
    json: &str,
) -> std::io::Result<(u16, String)> {
    http(addr, "POST", path, "application/json", json)
}

/// One HTTP/1.1 request (a test client: no TLS, whole answers read to the end).
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_with_head(addr, method, path, content_type, body).map(|(status, _, body)| (status, body))
}

/// One HTTP/1.1 request; the status code, the head (lower-cased) and the body.
pub fn http_with_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    exchange(stream, &addr.to_string(), method, path, content_type, body)
}

/// One HTTPS request to `addr`, trusting only the CA certificates in `ca` (PEM) and expecting
/// the server to prove `name`; the status code, the head (lower-cased) and the body.
#[allow(clippy::too_many_arguments)]
pub fn https_with_head(
    addr: std::net::SocketAddr,
    ca: &Path,
    name: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    use rustls::pki_types::pem::PemObject;
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| invalid(e.to_string()))?
    {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| invalid(e.to_string()))?;
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), server_name)
        .map_err(|e| invalid(e.to_string()))?;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let stream = rustls::StreamOwned::new(connection, tcp);
    let host = format!("{name}:{}", addr.port());
    exchange(stream, &host, method, path, content_type, body)
}

/// Writes one request naming `host` on `stream` and reads the whole answer.
fn exchange<S: std::io::Read + std::io::Write>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if !content_type.is_empty() {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    // Read the head, then exactly the body (servers may keep the connection open).
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break raw.len();
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &raw[head_end..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = &raw[head_end..];
    let body = if chunked {
        dechunk(body)
    } else {
        body[..length.unwrap_or(body.len()).min(body.len())].to_vec()
    };
    Ok((status, head, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..line_end]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let rest = &body[line_end + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest.get(n + 2..).unwrap_or(&[]);
    }
    out
}

/// Headless Chromium (Debian's `chromium`, which `.ci/test` installs), started as the
/// workplace requires: no sandbox as root, no background networking, and every host name
/// resolving to nothing but loopback, so a page that needed the internet would fail to load.
pub fn chromium(args: &[&str]) -> std::process::Output {
    chromium_at_home(None, args)
}

/// [`chromium`] run with `HOME` at `home`, when given: Chromium on Linux reads the certificate
/// authorities its user trusts from `$HOME/.pki/nssdb`.
pub fn chromium_at_home(home: Option<&Path>, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("a Chromium profile folder");
    let mut command = std::process::Command::new("chromium");
    if let Some(home) = home {
        command.env("HOME", home);
    }
    let output = command
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

/// Full marks for the standard category (20, зачёт).
pub const POINTS_FULL: &str =
    "Ч1=1,Ч2=1,Ч3=1,П1=2,П2=1,П3=1,М1=2,М2=1,Д1=2,Р1=2,Р2=2,Р3=2,Р4=1,Р5=1";
/// Low marks for the standard category (9, незачёт).
pub const POINTS_LOW: &str =
    "Ч1=0,Ч2=0,Ч3=0,П1=1,П2=1,П3=1,М1=1,М2=1,Д1=1,Р1=1,Р2=1,Р3=1,Р4=0,Р5=0";

/// A roster row of the standard category in room 101, document series 3204.
/// (The wire form, so a test can change a field with `..roster_row(…)`; [`entry`] checks it.)
pub fn roster_row(
    id: &str,
    surname: &str,
    number: &str,
) -> giasync_node::app::command::RosterEntryWire {
    giasync_node::app::command::RosterEntryWire {
        id: id.into(),
        surname: surname.into(),
        name: "Анна".into(),
        patronymic: String::new(),
        series: "3204".into(),
        number: number.into(),
        class: "9А".into(),
        category: "standard".into(),
        disabled: false,
        written: false,
        room: Some("101".into()),
    }
}

/// A roster entry from its wire form (which must be valid).
pub fn entry(
    wire: giasync_node::app::command::RosterEntryWire,
) -> giasync_node::app::command::RosterEntry {
    wire.try_into().expect("a valid roster row")
}

/// A roster import of rows in their wire form.
pub fn import(
    exam: &str,
    rows: Vec<giasync_node::app::command::RosterEntryWire>,
) -> giasync_node::app::Command {
    giasync_node::app::Command::RosterImport {
        exam: exam.parse().expect("exam"),
        rows: rows.into_iter().map(entry).collect(),
    }
}

/// The РЦОИ's region import of `rows` into school `school` of МОУО `municipality`: their
/// roster entries and the regional register's (the category of record, without which the РЦОИ
/// refuses a sheet on receipt).
pub fn register(
    exam: &str,
    school: &str,
    municipality: &str,
    rows: Vec<giasync_node::app::command::RosterEntryWire>,
) -> giasync_node::app::Command {
    giasync_node::app::Command::RegionImport {
        exam: exam.parse().expect("exam"),
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, wire)| giasync_node::app::command::RegionRow {
                row: i + 2,
                school: Some(giasync_shared::codes::SchoolCode::new(school).expect("school")),
                municipality: Some(
                    giasync_shared::codes::MunicipalityCode::new(municipality)
                        .expect("municipality"),
                ),
                participant: entry(wire),
            })
            .collect(),
    }
}

/// An ИС exam on today's date in the demo region's calendar (UTC+07:00): room-log times are
/// accepted only on the exam's day, and pages stamp them with the time now.
pub fn todays_exam() -> String {
    let offset: giasync_shared::calendar::UtcOffset = "+07:00".parse().expect("offset");
    let today = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms())
        .expect("now")
        .date_at(offset);
    format!("is-{today}")
}

pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_millis(),
    )
    .expect("ms fit i64")
}

/// A demo person's signing key (unlocked with the PIN the demo wrote down) and certificate (DER).
pub fn person_key(
    dir: &Path,
    person: &giasync_certs::demo::RegionPerson,
) -> (ed25519_dalek::SigningKey, Vec<u8>) {
    let key = giasync_certs::keyfile::open(
        &std::fs::read(dir.join(&person.key)).expect("key file"),
        &giasync_certs::keyfile::Pin::new(person.pin.clone()).expect("PIN"),
    )
    .expect("the demo PIN opens the key");
    let cert = giasync_certs::show::certs_from_pem(
        &std::fs::read(dir.join(&person.cert)).expect("certificate"),
    )
    .expect("PEM")
    .remove(0);
    (key, cert)
}

/// A score request: a sheet for `participant` of `school` in `exam`, signed now by the demo
/// `expert` (key unlocked with the PIN the demo wrote down).
pub fn score_request(
    dir: &Path,
    rules: &giasync_shared::rules::Rules,
    expert: &giasync_certs::demo::RegionPerson,
    exam: &str,
    school: &str,
    participant: &str,
    points: &str,
) -> giasync_node::app::Command {
    let now = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms()).expect("now");
    score_request_signed(dir, rules, expert, (exam, school, participant), points, now)
}

/// [`score_request`] for (exam, school, participant), signed at `signed_at`.
pub fn score_request_signed(
    dir: &Path,
    rules: &giasync_shared::rules::Rules,
    expert: &giasync_certs::demo::RegionPerson,
    (exam, school, participant): (&str, &str, &str),
    points: &str,
    signed_at: giasync_shared::calendar::Timestamp,
) -> giasync_node::app::Command {
    score_request_attempt(
        dir,
        rules,
        expert,
        (exam, school, participant, 1),
        points,
        signed_at,
    )
}

/// [`score_request_signed`] for an attempt other than the first.
pub fn score_request_attempt(
    dir: &Path,
    rules: &giasync_shared::rules::Rules,
    expert: &giasync_certs::demo::RegionPerson,
    (exam, school, participant, attempt): (&str, &str, &str, u8),
    points: &str,
    signed_at: giasync_shared::calendar::Timestamp,
) -> giasync_node::app::Command {
    use giasync_shared::record::{Attempt, SheetDraft, SheetSubject, SignedSheet};
    let (key, cert) = person_key(dir, expert);
    let draft = SheetDraft {
        subject: SheetSubject {
            exam: exam.parse().expect("exam"),
            school: giasync_shared::codes::SchoolCode::new(school).expect("school"),
            participant: giasync_shared::codes::ParticipantId::new(participant)
                .expect("participant"),
            attempt: Attempt::new(attempt).expect("attempt"),
        },
        room: giasync_shared::codes::RoomCode::new("101").expect("room"),
        category: giasync_shared::participant::Category::Standard,
        points: giasync_shared::rules::parse_points(points).expect("points"),
        expert: giasync_shared::codes::PersonId::new(expert.id.as_str()).expect("expert"),
        signed_at,
        correction: None,
    };
    let sheet = SignedSheet::sign(draft, rules, &key).expect("the sheet signs");
    giasync_node::app::Command::Score {
        exam: exam.parse().expect("exam"),
        sheet: sheet.as_bytes().to_vec(),
        expert: expert.id,
        expert_cert: cert,
    }
}

/// The demo experts of `school`.
pub fn experts_of<'a>(
    region: &'a giasync_certs::demo::Region,
    school: &str,
) -> Vec<&'a giasync_certs::demo::RegionPerson> {
    region
        .people
        .iter()
        .filter(|p| p.role == giasync_shared::codes::PersonRole::Expert && p.org == school)
        .collect()
}

/// Applies requests to a node's store (or the running node), each of which must succeed.
pub fn apply_all(
    config: &giasync_shared::config::NodeConfig,
    requests: Vec<giasync_node::app::Command>,
) {
    let context = giasync_node::app::Context::load(config).expect("CA and rules");
    for request in requests {
        let response = giasync_node::admin::execute(config, &context, &request, now_ms())
            .expect("the node answers");
        assert!(response.ok, "{request:?}: {}", response.message);
    }
}

/// Decodes `%XX` escapes (a redirect's query, as the pages write it).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hash of the recording an `audio add` answer named (its typed answer, not its message).
pub fn named_hash(response: &giasync_node::admin::Response) -> giasync_shared::blob::BlobHash {
    match &response.answer {
        Some(giasync_node::app::Answer::RecordingNamed(named)) => named.hash,
        other => panic!("not a recording named: {other:?} ({})", response.message),
    }
}

/// A WAV file of silence (16 kHz mono 16-bit) of `bytes` of sound, written sparse: a large
/// recording that costs no disk until it is copied.
pub fn silent_wav(path: &Path, bytes: u32) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).expect("wav");
    let mut header = b"RIFF".to_vec();
    header.extend_from_slice(&(36 + bytes).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&[1, 0, 1, 0]);
    header.extend_from_slice(&16_000u32.to_le_bytes());
    header.extend_from_slice(&32_000u32.to_le_bytes());
    header.extend_from_slice(&[2, 0, 16, 0]);
    header.extend_from_slice(b"data");
    header.extend_from_slice(&bytes.to_le_bytes());
    file.write_all(&header).expect("wav header");
    file.set_len(44 + u64::from(bytes)).expect("wav length");
}

/// A link that carries at most `bytes_per_s` from the node that sends to `front` on to `back`
/// (and everything back unthrottled), holding at most `queue_bytes` and dropping what does not
/// fit, as a thin school line with a small router buffer does. Returns the address to give the
/// sending node as its upstream.
pub async fn throttled_link(
    back: std::net::SocketAddr,
    bytes_per_s: u64,
    queue_bytes: usize,
) -> std::net::SocketAddr {
    use std::collections::VecDeque;
    let front = std::sync::Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    );
    let toward = std::sync::Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    );
    toward.connect(back).await.expect("connect");
    let addr = front.local_addr().expect("addr");
    let client: std::sync::Arc<std::sync::Mutex<Option<std::net::SocketAddr>>> =
        std::sync::Arc::default();
    // Back to the sender, unthrottled.
    {
        let (front, toward, client) = (front.clone(), toward.clone(), client.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = toward.recv(&mut buf).await {
                let to = *client.lock().expect("client");
                if let Some(to) = to {
                    let _ = front.send_to(&buf[..n], to).await;
                }
            }
        });
    }
    // Toward `back`, paced, drop-tail.
    tokio::spawn(async move {
        let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
        let mut queued = 0usize;
        let mut buf = vec![0u8; 65_536];
        let mut next_send = tokio::time::Instant::now();
        loop {
            let sleep = tokio::time::sleep_until(next_send);
            tokio::select! {
                received = front.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { return };
                    *client.lock().expect("client") = Some(from);
                    if queued + n <= queue_bytes {
                        queued += n;
                        queue.push_back(buf[..n].to_vec());
                    }
                }
                () = sleep, if !queue.is_empty() => {
                    if let Some(packet) = queue.pop_front() {
                        queued -= packet.len();
                        let _ = toward.send(&packet).await;
                        let gap = std::time::Duration::from_secs_f64(packet.len() as f64 / bytes_per_s as f64);
                        next_send = tokio::time::Instant::now().max(next_send) + gap;
                    }
                }
            }
            if queue.is_empty() {
                next_send = next_send.max(tokio::time::Instant::now());
            }
        }
    });
    addr
}

/// A spoken answer in Russian as WAV (espeak-ng), made longer and resampled as a recorder's
/// file would be (sox): what the technician's software writes.
pub fn spoken_answer(dir: &Path, name: &str, repeats: usize) -> PathBuf {
    let text = "Иванова Анна Викторовна, вариант пять, код работы сто один. ".repeat(repeats);
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(name);
    let spoke = std::process::Command::new("espeak-ng")
        .args(["-v", "ru", "-w"])
        .arg(&raw)
        .arg(&text)
        .status()
        .expect("espeak-ng (the test command installs it)");
    assert!(spoke.success());
    let converted = std::process::Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox (the test command installs it)");
    assert!(converted.success());
    out
}

/// Room 101 (30 seats) and `rows` in a school's roster for `exam`.
pub fn room_101_with(
    exam: &str,
    rows: Vec<giasync_node::app::command::RosterEntryWire>,
) -> Vec<giasync_node::app::Command> {
    vec![
        giasync_node::app::Command::Rooms {
            exam: exam.parse().expect("exam"),
            rooms: vec![(
                giasync_shared::codes::RoomCode::new("101").expect("room"),
                30,
            )],
        },
        import(exam, rows),
    ]
}

/// [`silent_wav`] filled with bytes that differ from piece to piece, written for real: a piece
/// lost or misplaced on the way changes what the file hashes to.
pub fn patterned_wav(path: &Path, bytes: u32) {
    use std::io::{Seek as _, SeekFrom};
    silent_wav(path, bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("wav");
    file.seek(SeekFrom::Start(44)).expect("seek");
    let mut left = bytes as usize;
    let mut block = 0u32;
    while left > 0 {
        let n = left.min(1 << 16);
        let chunk: Vec<u8> = (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ block.wrapping_mul(40_503)) as u8)
            .collect();
        file.write_all(&chunk).expect("wav data");
        left -= n;
        block += 1;
    }
}

/// The release code the РЦОИ of `dir` keeps for `exam`'s package (its one package in a test):
/// what an operator reads out by phone, from `STORE.materials/EXAM.HASH.code` beside its store.
pub fn kept_code(dir: &Path, exam: &str) -> String {
    let folder = dir.join("42").join("store.materials");
    let file = std::fs::read_dir(&folder)
        .expect("the РЦОИ's materials folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{exam}.")) && n.ends_with(".code")
            })
        })
        .expect("a kept code");
    std::fs::read_to_string(file)
        .expect("the code file")
        .trim()
        .to_owned()
}

/// Asks the node of `config` `command` as its console (the running node through its admin
/// socket, else its store), on a blocking thread so the test's runtime keeps serving its nodes.
pub async fn ask(
    config: &giasync_shared::config::NodeConfig,
    command: giasync_node::app::Command,
) -> giasync_node::admin::Response {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let context = giasync_node::app::Context::load(&config).expect("the node's context");
        giasync_node::admin::execute(&config, &context, &command, now_ms()).expect("an answer")
    })
    .await
    .expect("the blocking task")
}

/// Starts `schools` of municipality 4201 of the demo region in `dir` under the РЦОИ "42" and
/// the МОУО hub "4201" (all on free ports): the nodes and each school's configuration, the
/// РЦОИ's and the hub's first.
pub async fn start_region(
    dir: &Path,
    schools: &[&str],
    hub_config: impl FnOnce(&mut giasync_shared::config::NodeConfig),
) -> (
    Vec<giasync_node::run::NodeHandle>,
    Vec<giasync_shared::config::NodeConfig>,
) {
    let rcoi_config = node_config(dir, "42", &[]);
    let rcoi = giasync_node::service::start(rcoi_config.clone())
        .await
        .expect("the РЦОИ starts");
    let mut hub = node_config(dir, "4201", &[rcoi.listen.expect("the РЦОИ listens")]);
    hub_config(&mut hub);
    let hub_node = giasync_node::service::start(hub.clone())
        .await
        .expect("the hub starts");
    let mut nodes = vec![rcoi, hub_node];
    let mut configs = vec![rcoi_config, hub];
    for code in schools {
        let config = node_config(dir, code, &[nodes[1].listen.expect("the hub listens")]);
        nodes.push(
            giasync_node::service::start(config.clone())
                .await
                .expect("the school starts"),
        );
        configs.push(config);
    }
    (nodes, configs)
}
