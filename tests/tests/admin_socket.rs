//! The admin socket of a running node (issue 17, item 9): its file is `0600` whatever the umask;
//! a peer running as another user is refused even when the file's mode would let it in; every
//! command that writes is in the audit log with the uid that asked.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use giasync_node::admin;
use giasync_node::app::Command;
use giasync_node::store::Store;
use giasync_shared::codes::RoomCode;

const EXAM: &str = "is-2024-02-14";
/// The uid of `nobody` on Debian.
const NOBODY_UID: &str = "65534";

/// Connects to `socket` as `nobody` and sends a status request; what the node answered. (The
/// node may answer and close before the request is written: the client ignores SIGPIPE.)
fn ask_as_nobody(socket: &std::path::Path) -> String {
    let script = r#"use IO::Socket::UNIX; $SIG{PIPE} = "IGNORE"; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!"; print $s "{\"op\":\"status\",\"v\":2}\n"; print scalar <$s>;"#;
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            NOBODY_UID,
            "--regid",
            NOBODY_UID,
            "--clear-groups",
            "perl",
            "-e",
            script,
        ])
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_socket_serves_only_the_nodes_user_and_audits_who_wrote() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_300, 1);
    let config = giasync_tests::node_config(dir.path(), "420101", &[]);
    let node = giasync_node::service::start(config.clone()).await.unwrap();
    let socket = admin::socket_path(&config.node.store);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is {mode:o}");

    let config_ = config.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let rooms = Command::Rooms {
            exam: EXAM.parse().unwrap(),
            rooms: vec![(RoomCode::new("101").unwrap(), 30)],
        };
        admin::send_to_running(&config_, &rooms).unwrap()
    })
    .await
    .unwrap();
    assert!(answer.ok, "{}", answer.message);

    // Another user, even with the file opened to everyone, is refused by the node itself.
    if nix_root() {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        for folder in socket
            .ancestors()
            .skip(1)
            .take_while(|f| f.starts_with(dir.path()))
        {
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let socket_ = socket.clone();
        let refused = tokio::task::spawn_blocking(move || ask_as_nobody(&socket_))
            .await
            .unwrap();
        assert!(
            refused.contains("\"ok\":false") && refused.contains("only the node's own user"),
            "{refused}"
        );
    } else {
        eprintln!("not root: the other-user case needs setpriv as root and was not run");
    }

    node.stop();
    // The engine thread drops the store when it stops.
    let store = loop {
        match Store::open(&config.node.store) {
            Ok(store) => break store,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let audit = store.audit_tail(100).unwrap();
    let me = std::fs::metadata(dir.path()).unwrap();
    let line = format!(
        "admin socket, uid {}: rooms",
        std::os::unix::fs::MetadataExt::uid(&me)
    );
    assert!(
        audit.iter().any(|(_, text)| *text == line),
        "{line:?} not in {audit:?}"
    );
    // A read is not audited.
    assert!(!audit.iter().any(|(_, text)| text.ends_with(": status")));
}

/// Whether this test runs as root (who can become `nobody`).
fn nix_root() -> bool {
    let me = std::fs::metadata("/proc/self").unwrap();
    std::os::unix::fs::MetadataExt::uid(&me) == 0
}
