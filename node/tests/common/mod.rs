//! What the node's multi-process tests share: a demo region with fast key derivation, the
//! `giasync-node` binary run or started, a node's hello served over QUIC, a roster row.
#![allow(dead_code)] // each test file uses some of these
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use giasync_certs::demo::{DemoOptions, demo};
use giasync_certs::keyfile::KdfParams;
use giasync_node::admin;
use giasync_node::app::command::{RosterEntry, RosterEntryWire};
use giasync_node::transport::{self, TlsMaterial};
use giasync_shared::config::NodeConfig;

/// Key derivation fast enough for tests.
pub const FAST: KdfParams = KdfParams {
    memory_kib: 256,
    iterations: 1,
    parallelism: 1,
};

/// A demo region in `out`: one МОУО with `schools` schools, nodes on ports from `base_port`.
pub fn demo_region(out: &Path, base_port: u16, schools: u16) {
    demo(
        &DemoOptions {
            out: out.to_path_buf(),
            municipalities: 1,
            schools_per_municipality: schools,
            base_port,
            kdf: FAST,
            https: false,
            utc_offset: None,
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
}

/// Starts `giasync-node run` for `config` and waits until its admin socket answers.
pub fn start(config: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_giasync-node"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = admin::socket_path(&NodeConfig::load(config).unwrap().node.store);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Runs `giasync-node ARGS` to its end: whether it succeeded, and what it printed.
pub fn node(args: &[&str]) -> (bool, String) {
    node_with_env(args, &[])
}

/// [`node`] with variables set in its environment (a PIN, an enrolment code).
pub fn node_with_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_giasync-node"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Serves hellos as the node whose folder is `node_dir`, on a free loopback port.
pub fn serve(node_dir: &Path) -> (quinn::Endpoint, SocketAddr) {
    let config = NodeConfig::load(&node_dir.join("node.toml")).unwrap();
    let material = TlsMaterial::from_config(&config.tls).unwrap();
    let endpoint = transport::endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(transport::server_config(&material).unwrap()),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            tokio::spawn(async move {
                if let Ok(peer) = transport::accept(incoming).await {
                    let _ = peer.connection.closed().await;
                }
            });
        }
    });
    (endpoint, addr)
}

/// Serves hellos over the TCP fallback as the node whose folder is `node_dir`, on a free
/// loopback port.
pub async fn serve_tcp(node_dir: &Path) -> SocketAddr {
    let config = NodeConfig::load(&node_dir.join("node.toml")).unwrap();
    let material = TlsMaterial::from_config(&config.tls).unwrap();
    let listener = transport::tcp::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = transport::tcp::acceptor(&material).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, remote)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut peer) = transport::tcp::accept(&acceptor, stream, remote).await {
                    let mut rest = Vec::new();
                    let _ = tokio::io::AsyncReadExt::read_to_end(&mut peer.stream, &mut rest).await;
                }
            });
        }
    });
    addr
}

/// Points the upstreams of the node configured at `node_toml` at `addrs`.
pub fn point_upstreams(node_toml: &Path, addrs: &[SocketAddr]) {
    let text = std::fs::read_to_string(node_toml).unwrap();
    let mut config = NodeConfig::parse(&text, "node.toml").unwrap();
    for (upstream, addr) in config.upstreams.iter_mut().zip(addrs) {
        upstream.addr = *addr;
    }
    std::fs::write(node_toml, toml::to_string(&config).unwrap()).unwrap();
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The participants of `exam` in the store of the node configured by `config`, opened
/// directly (no node may run on it): their ids.
pub fn stored_participants(
    config: &NodeConfig,
    exam: giasync_shared::exam::ExamId,
) -> std::collections::BTreeSet<String> {
    let context = giasync_node::app::Context::load(config).unwrap();
    let roster = admin::execute(
        config,
        &context,
        &giasync_node::app::Command::Roster { exam },
        now_ms(),
    )
    .unwrap();
    assert!(roster.ok, "{}", roster.message);
    roster.fields.into_keys().collect()
}

/// The id of roster row `i` ([`row`]).
pub fn row_id(i: usize) -> String {
    format!("p{i:05}")
}

/// Roster row `i`: participant `p{i:05}` in room 101.
pub fn row(i: usize) -> RosterEntry {
    RosterEntryWire {
        id: row_id(i),
        surname: "Иванова".into(),
        name: "Анна".into(),
        patronymic: String::new(),
        series: "3204".into(),
        number: format!("{i:06}"),
        class: "9А".into(),
        category: "standard".into(),
        disabled: false,
        written: false,
        room: Some("101".into()),
    }
    .try_into()
    .unwrap()
}
