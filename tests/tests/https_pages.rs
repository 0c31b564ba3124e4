//! A school's pages over HTTPS (issue 17, item 8): served with a P-256 certificate from the
//! region's pages CA, which a client trusting only `web-ca.crt` accepts for the node's names and
//! no other; the region's (ed25519) CA does not vouch for it; plain HTTP gets no page; the
//! session cookie is `Secure`; and a client stalling handshakes keeps no one else out.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use giasync_shared::codes::PersonRole;

fn https(
    addr: SocketAddr,
    ca: &Path,
    name: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let content_type = if body.is_empty() {
        ""
    } else {
        "application/x-www-form-urlencoded"
    };
    giasync_tests::https_with_head(addr, ca, name, method, path, content_type, body)
}

/// A demo region (ports from `base_port`) whose school 420101 serves its pages over HTTPS:
/// the region's folder, the region, the running school, its pages' address, the pages' CA.
struct HttpsSchool {
    dir: tempfile::TempDir,
    region: giasync_certs::demo::Region,
    node: giasync_node::run::NodeHandle,
    web: SocketAddr,
    web_ca: std::path::PathBuf,
}

async fn https_school(base_port: u16) -> HttpsSchool {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed_serving(dir.path(), base_port, 1, true);
    let config = giasync_tests::node_config(dir.path(), "420101", &[]);
    assert!(config.web_tls.is_some(), "the demo asked for HTTPS");
    let node = giasync_node::service::start(config).await.unwrap();
    let web = node.web.unwrap();
    let web_ca = dir.path().join("pki").join("web-ca.crt");
    HttpsSchool {
        dir,
        region,
        node,
        web,
        web_ca,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_served_over_https_to_clients_that_trust_the_pages_ca() {
    let HttpsSchool {
        dir,
        region,
        node,
        web,
        web_ca,
    } = https_school(48_100).await;
    let region_ca = dir.path().join("420101").join("ca.crt");
    let organiser = region
        .people
        .iter()
        .find(|p| p.role == PersonRole::Organiser && p.org == "420101")
        .unwrap()
        .clone();

    let outcome = tokio::task::spawn_blocking(move || {
        // Trusting the pages' CA, by the names the certificate carries.
        for name in ["localhost", "127.0.0.1"] {
            let (status, _, body) = https(web, &web_ca, name, "GET", "/login", "").unwrap();
            assert_eq!(status, 200, "{name}: {body}");
            assert!(body.contains("<form"), "{name}: {body}");
        }
        // Signing in over HTTPS: the session cookie is never sent back over plain HTTP.
        let form = format!("person={}&pin={}", organiser.id, organiser.pin);
        let (status, head, _) = https(web, &web_ca, "localhost", "POST", "/login", &form).unwrap();
        assert_eq!(status, 303, "{head}");
        let cookie = head
            .lines()
            .find(|l| l.starts_with("set-cookie:"))
            .unwrap_or_else(|| panic!("no cookie in {head}"));
        assert!(cookie.contains("; secure"), "{cookie}");
        assert!(cookie.contains("httponly"), "{cookie}");

        // A name the certificate does not carry.
        let err = https(web, &web_ca, "evil.example", "GET", "/login", "").unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
        // The region's CA does not vouch for pages.
        let err = https(web, &region_ca, "localhost", "GET", "/login", "").unwrap_err();
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
        // Plain HTTP gets no page.
        let plain = giasync_tests::http_with_head(web, "GET", "/login", "", "");
        assert!(
            !matches!(plain, Ok((200, _, _))),
            "plain HTTP answered {plain:?}"
        );
    })
    .await;
    node.stop();
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_handshakes_keeps_no_one_else_out() {
    use giasync_node::web::tls::{HANDSHAKE_TIMEOUT_MS, HANDSHAKES_PER_CLIENT_MAX};
    let HttpsSchool {
        dir: _dir,
        node,
        web,
        web_ca,
        ..
    } = https_school(48_200).await;
    let outcome = tokio::task::spawn_blocking(move || {
        // Another machine (127.0.0.2) opens connections and never says hello.
        let stall = || {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
                .unwrap();
            socket.connect(&web.into()).unwrap();
            let stream: std::net::TcpStream = socket.into();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            stream
        };
        let stalled: Vec<_> = (0..20).map(|_| stall()).collect();
        // Written out: 8 handshakes per client address.
        assert_eq!(HANDSHAKES_PER_CLIENT_MAX, 8);
        // Closed: end of stream (or a reset). Held: the server waits for a hello, and reads
        // time out. Read until 12 are closed, or half the handshake timeout has passed (the
        // server may take a moment to accept them all).
        let started = Instant::now();
        let mut closed = vec![false; stalled.len()];
        while closed.iter().filter(|c| **c).count() < 12
            && started.elapsed() < Duration::from_millis(HANDSHAKE_TIMEOUT_MS / 2)
        {
            for (s, closed) in stalled.iter().zip(closed.iter_mut()).filter(|(_, c)| !**c) {
                let mut byte = [0u8; 1];
                *closed = match std::io::Read::read(&mut &*s, &mut byte) {
                    Ok(_) => true,
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                };
            }
        }
        let held = closed.iter().filter(|c| !**c).count();
        assert!(
            started.elapsed() < Duration::from_millis(HANDSHAKE_TIMEOUT_MS),
            "counted before the handshake timeout"
        );
        assert_eq!(
            held, 8,
            "the server holds 8 handshakes of one client, closes the rest"
        );
        // Meanwhile this machine gets its page.
        let (status, _, _) = https(web, &web_ca, "localhost", "GET", "/login", "").unwrap();
        assert_eq!(status, 200);
        drop(stalled);
    })
    .await;
    node.stop();
    outcome.unwrap();
}

/// A user's certificate store (`$HOME/.pki/nssdb`) trusting `ca` to identify web sites, made as
/// docs/school-ui.md tells a school's technician to (`certutil`, Debian's libnss3-tools).
fn home_trusting(ca: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join(".pki").join("nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let certutil = |args: &[&str]| {
        let out = std::process::Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil runs (bash .ci/test installs Debian's libnss3-tools)");
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    certutil(&[
        "-A",
        "-d",
        &db,
        "-n",
        "giasync pages CA",
        "-t",
        "C,,",
        "-i",
        ca.to_str().unwrap(),
    ]);
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_pages_once_it_trusts_the_pages_ca_and_not_before() {
    let HttpsSchool {
        dir: _dir,
        node,
        web,
        web_ca,
        ..
    } = https_school(48_300).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let url = format!("https://{web}/login");
        let trusting = home_trusting(&web_ca);
        let page = giasync_tests::chromium_at_home(Some(trusting.path()), &["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&page.stdout);
        assert!(
            dom.contains("<form") && dom.contains("name=\"pin\""),
            "trusting the pages CA: {dom}"
        );
        let stranger = tempfile::tempdir().unwrap();
        let page = giasync_tests::chromium_at_home(Some(stranger.path()), &["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&page.stdout);
        // Chromium up to 14x dumped its error page; later ones dump nothing and say on stderr
        // "Page load failed: net::ERR_CERT_AUTHORITY_INVALID".
        let said = format!("{dom}{}", String::from_utf8_lossy(&page.stderr));
        assert!(
            !dom.contains("name=\"pin\"") && said.contains("ERR_CERT_AUTHORITY_INVALID"),
            "not trusting: {dom}"
        );
    })
    .await;
    node.stop();
    outcome.unwrap();
}
