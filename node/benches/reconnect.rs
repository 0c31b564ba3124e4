//! The РЦОИ comes back after an outage and hundreds of schools reconnect at once.
//!
//! `cargo bench -p giasync-node --bench reconnect` starts `RECONNECT_BENCH_SCHOOLS` (default
//! 600) school nodes in this process (each with its own store, engine thread and UDP socket, on
//! loopback QUIC), each with a signed change to deliver, while their РЦОИ is down; then starts
//! the РЦОИ and reports how long until it holds every school's document, and its peak memory.

use std::time::{Duration, Instant};

use automerge::ROOT;
use automerge::transaction::Transactable;
use giasync_certs::identity::NodeIdentity;
use giasync_certs::pki::{Pki, Validity};
use giasync_shared::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};
use giasync_shared::config::{NodeConfig, NodeSection, TlsSection, Upstream};
use giasync_shared::sync::DocId;

fn node_config(
    pki: &mut Pki,
    dir: &std::path::Path,
    identity: NodeIdentity,
    listen: &str,
    upstream: Option<(&str, &str)>,
) -> Result<NodeConfig, Box<dyn std::error::Error>> {
    pki.write_node_files(
        dir,
        identity,
        "127.0.0.1",
        Validity::days_from(time::OffsetDateTime::now_utc(), 30)?,
    )?;
    let code = match identity.org {
        OrgCode::Rcoi(c) => c.to_string(),
        OrgCode::Municipality(c) => c.to_string(),
        OrgCode::School(c) => c.to_string(),
    };
    Ok(NodeConfig {
        node: NodeSection {
            region: identity.region,
            role: identity.role(),
            code,
            municipality: identity.municipality,
            listen: listen.parse()?,
            listen_tcp: None,
            quic_probe_s: None,
            store: dir.join("store.redb"),
            web: None,
            lookup: None,
            metrics: None,
            people: None,
            utc_offset: None,
            web_names: Vec::new(),
            oversight: giasync_shared::config::OversightAccess::SignIn,
            audio_kbit_s: None,
            audio_watch: None,
            audio_keep_months: None,
            readiness: None,
            year: None,
            calendar: None,
            essay: None,
        },
        tls: TlsSection {
            cert: dir.join("node.crt"),
            key: dir.join("node.key"),
            ca: dir.join("ca.crt"),
            crl: dir.join("crl.pem"),
        },
        web_tls: None,
        upstreams: upstream
            .map(|(code, addr)| Upstream {
                role: NodeRole::Rcoi,
                code: code.into(),
                addr: addr
                    .parse()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
                host: "127.0.0.1".into(),
                tcp: None,
            })
            .into_iter()
            .collect(),
    })
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schools: usize = std::env::var("RECONNECT_BENCH_SCHOOLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let region = RegionCode::new("42")?;
        let mut pki = Pki::init(&dir.path().join("pki"), region, "Бенчмарк", time::OffsetDateTime::now_utc())?;
        let rcoi_addr = "127.0.0.1:47900";
        let rcoi_config = node_config(&mut pki, &dir.path().join("rcoi"), NodeIdentity::new(region, OrgCode::Rcoi(region), None)?, rcoi_addr, None)?;
        let municipality = MunicipalityCode::new("4201")?;
        let t = Instant::now();
        let mut handles = Vec::new();
        for i in 0..schools {
            let code = format!("4201{i:03}");
            let identity = NodeIdentity::new(region, OrgCode::parse(NodeRole::School, &code)?, Some(municipality))?;
            let config = node_config(&mut pki, &dir.path().join(&code), identity, "127.0.0.1:0", Some(("42", rcoi_addr)))?;
            let handle = giasync_node::service::start(config).await?;
            let doc: DocId = format!("protocol/4201/{code}/is-2024-02-14").parse()?;
            handle.change(doc, |tx| tx.put(ROOT, "sheet", "15 зачёт").map(|_| ())).await?;
            handles.push(handle);
        }
        println!("{schools} school nodes up with a change each, the РЦОИ down ({:.1} s to set up)", t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = Instant::now();
        let rcoi = giasync_node::service::start(rcoi_config).await?;
        let mut first = None;
        loop {
            let held = rcoi.status().await.map_or(0, |s| s.docs.len());
            if held > 0 && first.is_none() {
                first = Some(t.elapsed());
            }
            if held >= schools {
                break;
            }
            if t.elapsed() > Duration::from_secs(300) {
                // A bench that times out fails (CI runs a short one): a regression in what
                // reconnects deliver is not a slower figure.
                return Err(format!("gave up after 300 s with {held} of {schools} schools' documents at the РЦОИ").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "РЦОИ back: first school in sync after {:.2} s, all {schools} after {:.2} s; peak memory of this process {} MiB",
            first.unwrap_or_default().as_secs_f64(),
            t.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
