//! A recording from a school to its МОУО hub over loopback QUIC: throughput beside a plain copy of
//! the same bytes on this disk, and the memory the move costs.
//!
//! `cargo bench -p giasync-node --bench blobs` makes a demo region (X.509 certificates from its
//! CA: the production path), starts the hub and the school in this process, takes a
//! `BLOBS_BENCH_MIB` MiB recording (default 2048) in at the school, and times the hub fetching it
//! whole (every piece checked against the hash, written, committed, the blob hashed again and
//! made visible). It then copies the school's stored file with `std::fs::copy` and an fsync, for
//! comparison, and reports the growth of the process's peak resident memory (both nodes) over
//! the move. It asserts the hub holds the blob whole under its hash and that the peak grew by
//! less than 64 MiB.

use std::time::{Duration, Instant};

use giasync_node::admin;
use giasync_node::app::{Command, Context};
use giasync_shared::codes::RoomCode;
use giasync_shared::config::NodeConfig;

const EXAM: &str = "is-2024-02-14";
const MEMORY_GROWTH_MIB_MAX: u64 = 64;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A WAV header for `bytes` of 16 kHz mono 16-bit sound, then the sound (not silence: bytes
/// that differ, written for real, so the disk and the page cache see them).
fn write_wav(path: &std::path::Path, bytes: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
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
    out.write_all(&header)?;
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut left = bytes as usize;
    let mut round = 0u8;
    while left > 0 {
        let n = left.min(block.len());
        let mut b = block[..n].to_vec();
        b[0] = round;
        round = round.wrapping_add(1);
        out.write_all(&b)?;
        left -= n;
    }
    out.flush()
}

fn ask(
    config: &NodeConfig,
    command: &Command,
) -> Result<admin::Response, Box<dyn std::error::Error>> {
    let context = Context::load(config)?;
    Ok(admin::execute(config, &context, command, 0)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u32 = std::env::var("BLOBS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let bytes = mib * 1024 * 1024;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let options = giasync_certs::demo::DemoOptions {
            out: dir.path().join("region"),
            municipalities: 1,
            schools_per_municipality: 1,
            base_port: 48_900,
            kdf: giasync_certs::keyfile::KdfParams {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            https: false,
            utc_offset: None,
        };
        giasync_certs::demo::demo(&options, time::OffsetDateTime::now_utc())?;
        let load = |code: &str| NodeConfig::load(&options.out.join(code).join("node.toml"));
        let mut hub_config = load("4201")?;
        hub_config.node.listen = "127.0.0.1:0".parse()?;
        hub_config.node.web = None;
        hub_config.upstreams.clear();
        let hub = giasync_node::service::start(hub_config).await?;
        let mut school_config = load("420101")?;
        school_config.node.web = None;
        school_config.upstreams.truncate(1);
        school_config.upstreams[0].addr = hub.listen.ok_or("the hub listens")?;
        let school = giasync_node::service::start(school_config.clone()).await?;

        let config = school_config.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let rooms = Command::Rooms {
                exam: EXAM.parse().map_err(|e| format!("{e}"))?,
                rooms: vec![(RoomCode::new("101").map_err(|e| e.to_string())?, 30)],
            };
            let answer = ask(&config, &rooms).map_err(|e| e.to_string())?;
            answer.ok.then_some(()).ok_or(answer.message)
        })
        .await??;
        let source = dir.path().join("2024-02-14_101_420101.wav");
        write_wav(&source, bytes)?;
        let len = std::fs::metadata(&source)?.len();

        // Let both nodes settle, then measure the peak from here.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let idle_kib = status_kib("VmRSS:");

        let config = school_config.clone();
        let file = source.clone();
        let took_in = Instant::now();
        let added = tokio::task::spawn_blocking(move || {
            ask(
                &config,
                &Command::AddRecording {
                    exam: EXAM.parse().expect("exam"),
                    file,
                    room: None,
                    participant: None,
                    attempt: None,
                    stream: true,
                },
            )
            .map_err(|e| e.to_string())
        })
        .await??;
        if !added.ok {
            return Err(added.message.into());
        }
        let intake = took_in.elapsed();
        let hash: giasync_shared::blob::BlobHash = added
            .message
            .split_whitespace()
            .nth(1)
            .ok_or("a hash")?
            .parse()?;
        let moving = Instant::now();
        loop {
            let status = hub.blob_status().await.ok_or("the hub runs")?;
            if status.held == 1 {
                break;
            }
            if moving.elapsed() > Duration::from_secs(3600) {
                return Err(format!("the hub never held it: {status:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let moved = moving.elapsed();
        let peak_kib = status_kib("VmHWM:");
        let growth_mib = peak_kib.saturating_sub(idle_kib) / 1024;

        // What the hub holds is the blob.
        let mut held = hub.blob_files().held(&hash)?;
        let mut hasher = bao_tree::blake3::Hasher::new();
        std::io::copy(&mut held, &mut hasher)?;
        if hasher.finalize().as_bytes() != &hash.0 {
            return Err("the hub's copy does not hash to the blob's name".into());
        }

        // A plain copy of the same bytes on this disk, synced.
        let copied_to = dir.path().join("plain-copy");
        let copying = Instant::now();
        std::fs::copy(&source, &copied_to)?;
        std::fs::File::open(&copied_to)?.sync_all()?;
        let copy = copying.elapsed();

        let rate = |d: Duration| len as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
        println!("recording of {mib} MiB, school → МОУО hub over loopback QUIC (X.509 demo region):");
        println!("  taken in at the school (copy, check, hash): {:.2} s, {:.0} MiB/s", intake.as_secs_f64(), rate(intake));
        println!("  fetched whole by the hub: {:.2} s, {:.0} MiB/s", moved.as_secs_f64(), rate(moved));
        println!("  plain file copy of the same bytes, synced: {:.2} s, {:.0} MiB/s", copy.as_secs_f64(), rate(copy));
        println!("  peak resident memory grew by {growth_mib} MiB over the move (both nodes; limit {MEMORY_GROWTH_MIB_MAX})");
        if growth_mib >= MEMORY_GROWTH_MIB_MAX {
            return Err(format!("peak memory grew by {growth_mib} MiB").into());
        }
        drop(school);
        Ok(())
    })
}
