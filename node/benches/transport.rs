//! QUIC on loopback: handshake time (median of many) and one stream's throughput.
//!
//! `cargo bench -p giasync-node --bench transport` sets up a throwaway region (CA, a РЦОИ and a
//! school), then measures: the mutually authenticated handshake alone (`connect` until the
//! client has the server's identity), the handshake plus giasync's hello (a peer is accepted
//! only after it), and the throughput of one stream carrying `TRANSPORT_BENCH_MIB` MiB
//! (default 256) from the school to the РЦОИ.

use std::time::{Duration, Instant};

use giasync_certs::identity::NodeIdentity;
use giasync_certs::pki::{Pki, Validity};
use giasync_node::transport::{self, TlsMaterial};
use giasync_shared::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};

const HANDSHAKES: usize = 400;

fn write_node(
    pki: &mut Pki,
    dir: &std::path::Path,
    identity: NodeIdentity,
) -> Result<TlsMaterial, Box<dyn std::error::Error>> {
    let now = time::OffsetDateTime::now_utc();
    pki.write_node_files(dir, identity, "127.0.0.1", Validity::days_from(now, 30)?)?;
    Ok(TlsMaterial::load(
        &dir.join("node.crt"),
        &dir.join("node.key"),
        &dir.join("ca.crt"),
        &dir.join("crl.pem"),
    )?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::var("TRANSPORT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let region = RegionCode::new("42")?;
        let mut pki = Pki::init(&dir.path().join("pki"), region, "Бенчмарк", time::OffsetDateTime::now_utc())?;
        let rcoi = NodeIdentity::new(region, OrgCode::Rcoi(region), None)?;
        let school = NodeIdentity::new(
            region,
            OrgCode::parse(NodeRole::School, "420101")?,
            Some(MunicipalityCode::new("4201")?),
        )?;
        let server_material = write_node(&mut pki, &dir.path().join("rcoi"), rcoi)?;
        let client_material = write_node(&mut pki, &dir.path().join("school"), school)?;

        let server = transport::endpoint("127.0.0.1:0".parse()?, Some(transport::server_config(&server_material)?))?;
        let addr = server.local_addr()?;
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                tokio::spawn(async move {
                    let Ok(peer) = transport::accept(incoming).await else { return };
                    // Bulk streams: read everything, then answer with the byte count.
                    while let Ok((mut send, mut recv)) = peer.connection.accept_bi().await {
                        let mut total = 0u64;
                        let mut buf = vec![0u8; 1 << 16];
                        while let Ok(Some(n)) = recv.read(&mut buf).await {
                            total += n as u64;
                        }
                        let _ = send.write_all(&total.to_be_bytes()).await;
                        let _ = send.finish();
                    }
                });
            }
        });
        let client = transport::endpoint("127.0.0.1:0".parse()?, None)?;

        // The TLS handshake alone.
        let config = transport::client_config(&client_material, rcoi.org)?;
        let mut tls_only = Vec::with_capacity(HANDSHAKES);
        for _ in 0..HANDSHAKES {
            let t = Instant::now();
            let connection = client.connect_with(config.clone(), addr, "127.0.0.1")?.await?;
            tls_only.push(t.elapsed());
            connection.close(0u32.into(), b"");
        }
        // The handshake and the hello: what a node waits for before it trusts a peer.
        let mut with_hello = Vec::with_capacity(HANDSHAKES);
        for _ in 0..HANDSHAKES {
            let t = Instant::now();
            let peer = transport::connect(&client, &client_material, addr, "127.0.0.1", rcoi.org).await?;
            with_hello.push(t.elapsed());
            peer.connection.close(0u32.into(), b"");
        }
        for (what, samples) in [("mTLS handshake", &mut tls_only), ("mTLS handshake + hello", &mut with_hello)] {
            samples.sort();
            println!(
                "{what:<24} {HANDSHAKES} on loopback: median {:.3} ms, p90 {:.3} ms, min {:.3} ms",
                percentile(samples, 0.5).as_secs_f64() * 1e3,
                percentile(samples, 0.9).as_secs_f64() * 1e3,
                samples[0].as_secs_f64() * 1e3,
            );
        }

        // One stream's throughput.
        let peer = transport::connect(&client, &client_material, addr, "127.0.0.1", rcoi.org).await?;
        let (mut send, mut recv) = peer.connection.open_bi().await?;
        let chunk = vec![0x5au8; 1 << 20];
        let t = Instant::now();
        for _ in 0..mib {
            send.write_all(&chunk).await?;
        }
        send.finish()?;
        let reply = recv.read_to_end(8).await?;
        let elapsed = t.elapsed();
        let received = u64::from_be_bytes(reply.as_slice().try_into()?);
        assert_eq!(received, (mib as u64) << 20, "the server received every byte");
        println!(
            "one stream                {mib} MiB on loopback in {:.2} s: {:.0} MiB/s ({:.2} Gbit/s)",
            elapsed.as_secs_f64(),
            mib as f64 / elapsed.as_secs_f64(),
            mib as f64 * 8.0 * 1.048_576 / 1000.0 / elapsed.as_secs_f64()
        );
        peer.connection.close(0u32.into(), b"");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
