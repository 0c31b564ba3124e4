//! Mutual authentication over real QUIC on loopback: who may connect, and why not.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;

use giasync_certs::pki::Validity;
use giasync_node::transport::{self, Peer, TlsMaterial, TransportError, tcp};
use giasync_shared::sync::NodeIdentity;
use giasync_tests::{Logs, NodeFiles, TestRegion, municipality, now, rcoi, school};
use time::Duration;

const LOOPBACK: &str = "127.0.0.1:0";

/// Starts a server for `server`, dials it as `client` expecting `expected`, and returns both
/// outcomes.
async fn attempt(
    server: &TlsMaterial,
    client: &TlsMaterial,
    expected: giasync_shared::codes::OrgCode,
) -> (Result<Peer, TransportError>, Result<Peer, TransportError>) {
    let server_endpoint = transport::endpoint(
        LOOPBACK.parse().unwrap(),
        Some(transport::server_config(server).unwrap()),
    )
    .unwrap();
    let addr: SocketAddr = server_endpoint.local_addr().unwrap();
    let accept_endpoint = server_endpoint.clone();
    let accepting = tokio::spawn(async move {
        let incoming = accept_endpoint
            .accept()
            .await
            .expect("an incoming connection");
        let result = transport::accept(incoming).await;
        // Keep the connection open until the client has read the reply.
        if let Ok(peer) = &result {
            let _ = peer.connection.closed().await;
        }
        result
    });
    let client_endpoint = transport::endpoint(LOOPBACK.parse().unwrap(), None).unwrap();
    let client_result =
        transport::connect(&client_endpoint, client, addr, "127.0.0.1", expected).await;
    if let Ok(peer) = &client_result {
        peer.connection.close(0u32.into(), b"done");
    }
    let server_result = accepting.await.expect("accept task");
    (server_result, client_result)
}

fn material(node: &NodeFiles) -> TlsMaterial {
    node.material()
}

#[tokio::test]
async fn a_valid_pair_connects_and_each_side_sees_the_others_identity() {
    let mut region = TestRegion::new("42");
    let hub = region.node(municipality("42", "4201"));
    let pupil = region.node(school("42", "4201", "420101"));
    let (server, client) = attempt(&material(&hub), &material(&pupil), hub.identity.org).await;
    let client = client.expect("the school connects");
    assert_eq!(client.identity, hub.identity);
    assert!(client.clock_skew_ms.expect("skew measured").abs() < 1_000);
    let server = server.expect("the hub accepts");
    assert_eq!(server.identity, pupil.identity);
    assert_eq!(server.identity.municipality, pupil.identity.municipality);
}

#[tokio::test]
async fn a_certificate_from_another_regions_ca_is_refused() {
    let (logs, _guard) = Logs::capture();
    let mut region = TestRegion::new("42");
    let mut foreign = TestRegion::new("43");
    let hub = region.node(rcoi("42"));
    let intruder = foreign.node(school("43", "4301", "430101"));
    let (server, client) = attempt(&material(&hub), &material(&intruder), hub.identity.org).await;
    // The intruder does not trust the hub's CA either, so it refuses first.
    let client_err = client.expect_err("refused");
    assert!(
        matches!(&client_err, TransportError::PeerRefused { reason } if reason.contains("unknown CA")),
        "{client_err}"
    );
    assert!(server.is_err());
    // A rogue CA minting region-42 identities, and a client that trusts the real CA but holds a
    // rogue certificate: the server refuses it.
    let mut rogue = TestRegion::named("42", "Поддельный центр");
    let forged = rogue.node(school("42", "4201", "420101"));
    let mut trusting = forged.clone();
    trusting.dir = rogue.path().join("trusting");
    std::fs::create_dir_all(&trusting.dir).unwrap();
    for f in ["node.crt", "node.key"] {
        std::fs::copy(forged.dir.join(f), trusting.dir.join(f)).unwrap();
    }
    std::fs::copy(hub.ca(), trusting.ca()).unwrap();
    std::fs::copy(hub.crl(), trusting.crl()).unwrap();
    let (server, client) = attempt(&material(&hub), &material(&trusting), hub.identity.org).await;
    let client_err = client.expect_err("refused by the server");
    assert!(
        matches!(&client_err, TransportError::RefusedByPeer { reason } if reason.contains("unknown CA")),
        "{client_err}"
    );
    let server_err = server.expect_err("the server refuses");
    assert!(
        matches!(&server_err, TransportError::PeerRefused { reason } if reason.contains("unknown CA")),
        "{server_err}"
    );
    let text = logs.text();
    assert!(
        text.contains("incoming connection refused") && text.contains("unknown CA"),
        "{text}"
    );
    assert!(
        text.contains("the peer refused our certificate: unknown CA"),
        "{text}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let (logs, _guard) = Logs::capture();
    let mut region = TestRegion::new("42");
    let hub = region.node(rcoi("42"));
    let expired = Validity {
        not_before: now() - Duration::days(400),
        not_after: now() - Duration::days(35),
    };
    let stale = region.node_with(school("42", "4201", "420101"), expired);
    let (server, client) = attempt(&material(&hub), &material(&stale), hub.identity.org).await;
    let client_err = client.expect_err("refused");
    assert!(
        matches!(&client_err, TransportError::RefusedByPeer { reason } if reason.contains("certificate expired")),
        "{client_err}"
    );
    let server_err = server.expect_err("refused");
    assert!(
        matches!(&server_err, TransportError::PeerRefused { reason } if reason.contains("certificate expired")),
        "{server_err}"
    );
    assert!(
        logs.text().contains("certificate expired"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let (logs, _guard) = Logs::capture();
    let mut region = TestRegion::new("42");
    let hub = region.node(rcoi("42"));
    let lost = region.node(school("42", "4201", "420101"));
    let serial = lost.serial;
    region.revoke(serial, &[&hub]);
    let (server, client) = attempt(&material(&hub), &material(&lost), hub.identity.org).await;
    let client_err = client.expect_err("refused");
    assert!(
        matches!(&client_err, TransportError::RefusedByPeer { reason } if reason.contains("certificate revoked")),
        "{client_err}"
    );
    let server_err = server.expect_err("refused");
    assert!(
        matches!(&server_err, TransportError::PeerRefused { reason } if reason.contains("certificate revoked")),
        "{server_err}"
    );
    assert!(
        logs.text().contains("certificate revoked"),
        "{}",
        logs.text()
    );

    // A revoked server is refused by a client holding the new list.
    let mut region = TestRegion::new("42");
    let hub = region.node(rcoi("42"));
    let pupil = region.node(school("42", "4201", "420101"));
    region.revoke(hub.serial, &[&pupil]);
    let (_, client) = attempt(&material(&hub), &material(&pupil), hub.identity.org).await;
    assert!(
        matches!(client, Err(TransportError::PeerRefused { reason }) if reason.contains("certificate revoked"))
    );
}

#[tokio::test]
async fn a_school_certificate_where_a_municipality_was_expected_is_refused() {
    let (logs, _guard) = Logs::capture();
    let mut region = TestRegion::new("42");
    let impostor = region.node(school("42", "4201", "420101"));
    let pupil = region.node(school("42", "4201", "420102"));
    let expected = municipality("42", "4201").org;
    let (_, client) = attempt(&material(&impostor), &material(&pupil), expected).await;
    let err = client.expect_err("refused");
    assert!(
        matches!(&err, TransportError::PeerRefused { reason } if reason == "expected municipality:4201 of region 42, the certificate is for school 420101 (municipality 4201) of region 42"),
        "{err}"
    );
    assert!(
        logs.text().contains("expected municipality:4201"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let (logs, _guard) = Logs::capture();
    let mut region = TestRegion::new("42");
    let hub = region.node(rcoi("42"));
    let hub_material = material(&hub);
    let server_endpoint = transport::endpoint(
        LOOPBACK.parse().unwrap(),
        Some(transport::server_config(&hub_material).unwrap()),
    )
    .unwrap();
    let addr = server_endpoint.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        let incoming = server_endpoint.accept().await.expect("incoming");
        transport::accept(incoming).await
    });
    // A client that trusts the CA but has no certificate of its own.
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(hub_material.roots.clone())
    .with_no_client_auth();
    tls.alpn_protocols = vec![transport::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let client = transport::endpoint(LOOPBACK.parse().unwrap(), None).unwrap();
    let connection = client
        .connect_with(
            quinn::ClientConfig::new(std::sync::Arc::new(quic)),
            addr,
            "127.0.0.1",
        )
        .unwrap()
        .await
        .expect("TLS 1.3 lets the client finish before the server decides");
    let first_io = async {
        let (mut send, mut recv) = connection.open_bi().await?;
        send.write_all(b"hello").await?;
        send.finish()?;
        recv.read_to_end(64).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    assert!(first_io.await.is_err(), "the first stream fails");
    let reason = connection.close_reason().expect("closed");
    assert!(
        reason.to_string().contains("0x174")
            || reason.to_string().to_lowercase().contains("certificate"),
        "{reason}"
    );
    let server_err = accepting.await.unwrap().expect_err("refused");
    assert!(
        matches!(&server_err, TransportError::PeerRefused { reason } if reason.contains("no certificate was sent")),
        "{server_err}"
    );
    assert!(
        logs.text().contains("incoming connection refused"),
        "{}",
        logs.text()
    );
}

/// A `crl.pem` holding last term's list (run out) and then this term's is as fresh as this
/// term's for TLS as for the attestation checker: TLS judges with the freshest list.
#[tokio::test]
async fn a_list_file_holding_a_stale_list_before_a_fresh_one_connects() {
    let mut region = TestRegion::new("42");
    let hub = region.node_with(
        rcoi("42"),
        Validity::days_from(now() - Duration::days(200), 365).unwrap(),
    );
    let pupil = region.node_with(
        school("42", "4201", "420101"),
        Validity::days_from(now() - Duration::days(200), 365).unwrap(),
    );
    region.pki.reissue_crl(now() - Duration::days(181)).unwrap();
    let stale = region.pki.crl_pem().unwrap();
    region.pki.reissue_crl(now()).unwrap();
    let fresh = region.pki.crl_pem().unwrap();
    for node in [&hub, &pupil] {
        std::fs::write(node.crl(), format!("{stale}{fresh}")).unwrap();
    }
    let (server, client) = attempt(&material(&hub), &material(&pupil), hub.identity.org).await;
    server.expect("the hub accepts");
    client.expect("the school accepts");
}

/// Hardening item 11: a revocation list past its next update may be missing a revocation made
/// since, so each side refuses to judge the other with it: the hub holding it refuses every
/// client, a client holding it refuses the hub. The certificate checker of attestations refuses
/// alike at any time after the next update, and judges times before it as before.
#[tokio::test]
async fn a_revocation_list_past_its_next_update_is_refused() {
    use giasync_shared::sync::CertVerifier;
    let mut region = TestRegion::new("42");
    let hub = region.node(rcoi("42"));
    let pupil = region.node(school("42", "4201", "420101"));
    // Issued 181 days ago with the 180 days a list is valid: it ran out yesterday.
    let issued = now() - Duration::days(181);
    region.pki.reissue_crl(issued).unwrap();
    std::fs::write(hub.crl(), region.pki.crl_pem().unwrap()).unwrap();
    let (server, _) = attempt(&material(&hub), &material(&pupil), hub.identity.org).await;
    let server_err = server.expect_err("the hub with a stale list refuses");
    assert!(format!("{server_err}").contains("expired"), "{server_err}");

    let mut region = TestRegion::new("42");
    // The hub's certificate is valid from 10 days ago, before the list ran out.
    let hub = region.node_with(
        rcoi("42"),
        Validity::days_from(now() - Duration::days(10), 365).unwrap(),
    );
    let pupil = region.node(school("42", "4201", "420101"));
    region.pki.reissue_crl(issued).unwrap();
    std::fs::write(pupil.crl(), region.pki.crl_pem().unwrap()).unwrap();
    let (_, client) = attempt(&material(&hub), &material(&pupil), hub.identity.org).await;
    let client_err = client.expect_err("the school with a stale list refuses");
    assert!(format!("{client_err}").contains("expired"), "{client_err}");

    let verifier = giasync_certs::verify::CaVerifier::from_pem(
        &std::fs::read(pupil.ca()).unwrap(),
        &std::fs::read(pupil.crl()).unwrap(),
        "42".parse().unwrap(),
    )
    .unwrap();
    let cert = std::fs::read(hub.cert()).unwrap();
    let der = giasync_certs::show::certs_from_pem(&cert)
        .unwrap()
        .remove(0);
    let refused = verifier.node_key(&der).expect_err("stale list");
    assert!(refused.contains("out of date"), "{refused}");
    let two_days_ago = (now() - Duration::days(2)).unix_timestamp() * 1000;
    assert!(verifier.node_key_at(&der, two_days_ago).is_ok());
    let warning = verifier.crl_warning(now()).expect("a warning");
    assert!(warning.contains("ran out"), "{warning}");
}

/// The simulator times a reconnect by when QUIC sends a connection's first packet again while
/// nothing answers (`transport::first_packet_sends_ms`): this dials an address that never
/// answers and checks the real sends against that schedule.
#[tokio::test]
async fn an_unanswered_first_packet_is_sent_again_when_the_simulator_assumes() {
    const SENDS: usize = 3;
    const GROUP_MS: u128 = 100;
    const TOLERANCE_MS: i128 = 250;
    let mut region = TestRegion::new("42");
    let hub = region.node(municipality("42", "4201"));
    let pupil = region.node(school("42", "4201", "420101"));
    let hole = std::net::UdpSocket::bind(LOOPBACK).unwrap();
    let addr = hole.local_addr().unwrap();
    let listening = std::thread::spawn(move || {
        // Datagrams sent together (a probe may be two packets) count as one send.
        let mut sends: Vec<std::time::Instant> = Vec::new();
        let mut buffer = [0u8; 2048];
        hole.set_read_timeout(Some(std::time::Duration::from_secs(6)))
            .unwrap();
        while sends.len() < SENDS {
            let Ok(_) = hole.recv(&mut buffer) else {
                break;
            };
            let at = std::time::Instant::now();
            if sends
                .last()
                .is_none_or(|last| at.duration_since(*last).as_millis() > GROUP_MS)
            {
                sends.push(at);
            }
        }
        sends
    });
    let endpoint = transport::endpoint(LOOPBACK.parse().unwrap(), None).unwrap();
    let client = material(&pupil);
    let dialing = tokio::spawn(async move {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            transport::connect(&endpoint, &client, addr, "127.0.0.1", hub.identity.org),
        )
        .await;
    });
    let sends = tokio::task::spawn_blocking(move || listening.join().unwrap())
        .await
        .unwrap();
    dialing.abort();
    assert_eq!(
        sends.len(),
        SENDS,
        "the first packet was sent {} times",
        sends.len()
    );
    let expected: Vec<u64> = transport::first_packet_sends_ms().take(SENDS).collect();
    for (i, at) in sends.iter().enumerate() {
        let measured = at.duration_since(sends[0]).as_millis() as i128;
        assert!(
            (measured - i128::from(expected[i])).abs() <= TOLERANCE_MS,
            "send {i} at {measured} ms, expected {} ms (all: {:?})",
            expected[i],
            sends
                .iter()
                .map(|s| s.duration_since(sends[0]).as_millis())
                .collect::<Vec<_>>()
        );
    }
}

/// As [`attempt`], over the TCP fallback (`transport::tcp`): the identity each side saw, or
/// why it refused.
async fn attempt_tcp(
    server: &TlsMaterial,
    client: &TlsMaterial,
    expected: giasync_shared::codes::OrgCode,
) -> (
    Result<NodeIdentity, TransportError>,
    Result<NodeIdentity, TransportError>,
) {
    let listener = tcp::listen(LOOPBACK.parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tcp::acceptor(server).unwrap();
    let accepting = tokio::spawn(async move {
        let (stream, remote) = listener.accept().await.expect("a connection");
        let mut peer = tcp::accept(&acceptor, stream, remote).await?;
        // Keep the connection open until the client has read the reply and gone.
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut peer.stream, &mut rest).await;
        Ok(peer.identity)
    });
    let client_result = tcp::connect(client, addr, "127.0.0.1", expected)
        .await
        .map(|peer| {
            assert!(peer.clock_skew_ms.expect("skew measured").abs() < 1_000);
            assert_eq!(peer.wire, giasync_shared::sync::wire::WIRE_VERSION);
            peer.identity
        });
    let server_result = accepting.await.expect("accept task");
    (server_result, client_result)
}

#[tokio::test]
async fn over_tcp_the_same_certificates_pass_and_fail_for_the_same_reasons() {
    let mut region = TestRegion::new("42");
    let hub = region.node(municipality("42", "4201"));
    let pupil = region.node(school("42", "4201", "420101"));
    let (server, client) = attempt_tcp(&material(&hub), &material(&pupil), hub.identity.org).await;
    assert_eq!(client.expect("the school connects"), hub.identity);
    assert_eq!(server.expect("the hub accepts"), pupil.identity);

    // Another region's node: it refuses the hub's CA first.
    let mut foreign = TestRegion::new("43");
    let intruder = foreign.node(school("43", "4301", "430101"));
    let (server, client) =
        attempt_tcp(&material(&hub), &material(&intruder), hub.identity.org).await;
    let client_err = client.expect_err("refused");
    assert!(
        matches!(&client_err, TransportError::PeerRefused { reason } if reason.contains("unknown CA")),
        "{client_err}"
    );
    assert!(server.is_err());

    // A revoked school: the hub refuses it, and the school hears why.
    let lost = region.node(school("42", "4201", "420102"));
    region.revoke(lost.serial, &[&hub]);
    let (server, client) = attempt_tcp(&material(&hub), &material(&lost), hub.identity.org).await;
    let client_err = client.expect_err("refused");
    assert!(
        matches!(&client_err, TransportError::RefusedByPeer { reason } if reason.contains("certificate revoked")),
        "{client_err}"
    );
    let server_err = server.expect_err("refused");
    assert!(
        matches!(&server_err, TransportError::PeerRefused { reason } if reason.contains("certificate revoked")),
        "{server_err}"
    );

    // A node of the region, but not the one the school meant to reach.
    let impostor = region.node(school("42", "4201", "420103"));
    let (_, client) = attempt_tcp(&material(&impostor), &material(&pupil), hub.identity.org).await;
    let err = client.expect_err("refused");
    assert!(
        matches!(&err, TransportError::PeerRefused { reason } if reason.starts_with("expected municipality:4201 of region 42")),
        "{err}"
    );
}
