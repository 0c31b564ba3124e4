//! `doctor`: the technical specialist's readiness check the day before the exam.
//!
//! One line per check, `ok` or the reason: the configuration, the store, the certificate and
//! its key, expiry, the CA, the revocation list, and for each upstream whether it is reachable,
//! proves the expected identity, and how far its clock is from ours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use giasync_certs::identity::Identity;
use giasync_certs::pki::node_key_public;
use giasync_certs::show::{
    certs_from_pem, crls_from_pem, summarize_crl_der, summarize_der, verify_crl_issued_by,
    verify_issued_by,
};
use giasync_shared::config::NodeConfig;
use time::OffsetDateTime;

use crate::transport::{self, TlsMaterial};

/// A certificate expiring sooner than this fails the check: renew it before exam day.
pub const CERT_EXPIRY_DAYS_MIN: i64 = 14;
/// The largest clock difference to an upstream that passes: room logs and score sheets carry
/// times that people compare.
pub const CLOCK_SKEW_MS_MAX: i64 = 60_000;
/// How long to try to reach one upstream, by default.
pub const UPSTREAM_TIMEOUT_MS: u64 = 15_000;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    /// `Ok(detail)` or `Err(reason)`.
    pub outcome: Result<String, String>,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Result<String, String>) -> Self {
        Check {
            name: name.into(),
            outcome,
        }
    }

    /// `ok   name: detail` or `FAIL name: reason`.
    #[must_use]
    pub fn line(&self) -> String {
        match &self.outcome {
            Ok(detail) => format!("ok    {}: {detail}", self.name),
            Err(reason) => format!("FAIL  {}: {reason}", self.name),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs every check for the node configured in `config_path`, giving each upstream
/// `upstream_timeout` to answer.
pub async fn run(
    config_path: &Path,
    now: OffsetDateTime,
    upstream_timeout: Duration,
) -> Vec<Check> {
    let config = match NodeConfig::load(config_path) {
        Ok(config) => config,
        Err(e) => return vec![Check::new("configuration", Err(e.to_string()))],
    };
    let mut checks = vec![Check::new(
        "configuration",
        Ok(format!(
            "{} {} in region {}",
            config.node.role, config.node.code, config.node.region
        )),
    )];
    checks.push(Check::new("store", check_store(&config.node.store)));
    checks.push(Check::new(
        "region clock",
        Ok(region_clock(config.node.utc_offset)),
    ));
    checks.push(Check::new(
        "year data",
        check_year_data(&config, now.year()),
    ));
    checks.extend(check_certificates(&config, now));
    if let Some(web_tls) = &config.web_tls {
        checks.push(Check::new(
            "pages certificate (HTTPS)",
            check_page_certificate(web_tls, &config.node.web_names, now),
        ));
    }
    match TlsMaterial::from_config(&config.tls) {
        Ok(material) => checks.extend(check_upstreams(&config, &material, upstream_timeout).await),
        Err(e) => {
            for (i, u) in config.upstreams.iter().enumerate() {
                checks.push(Check::new(
                    format!("upstream {} ({} {} at {})", i + 1, u.role, u.code, u.addr),
                    Err(format!("not tried: TLS material does not load ({e})")),
                ));
            }
        }
    }
    checks
}

/// The region's clock the node judges days and times on. An offset not given reads as UTC,
/// which no region of Russia keeps: said, so the materials' 07:30 and the deadlines' days are
/// not silently hours off (a warning only: a test region may run on UTC).
fn region_clock(offset: Option<giasync_shared::calendar::UtcOffset>) -> String {
    match offset {
        Some(offset) => format!(
            "UTC{offset}: the exam materials open at 07:30 and deadlines count days on this clock"
        ),
        None => "UTC+00:00; WARNING: [node] utc_offset is not set, and every region of Russia is ahead of UTC (Кузбасс: utc_offset = \"+07:00\"): the exam materials open at 07:30 and deadlines count days on this clock".to_owned(),
    }
}

/// The year file and the production calendar load; this year or the next not listed is said
/// (its working days are counted by the Labour Code alone, without the government's moves),
/// but does not fail the check: the shipped calendar ages, and a school does not count them.
fn check_year_data(config: &NodeConfig, this_year: i32) -> Result<String, String> {
    use giasync_shared::workdays::ProductionCalendar;
    use giasync_shared::year::YearData;
    let year = match &config.node.year {
        Some(path) => YearData::load(path),
        None => YearData::year_2024(),
    }
    .map_err(|e| e.to_string())?;
    let calendar = match &config.node.calendar {
        Some(path) => ProductionCalendar::load(path),
        None => ProductionCalendar::shipped(),
    }
    .map_err(|e| e.to_string())?;
    let years: Vec<i32> = calendar.years().map(|(y, _)| y).collect();
    let listed = match (years.first(), years.last()) {
        (Some(first), Some(last)) => format!("{first}–{last}"),
        _ => "no year".to_owned(),
    };
    // This year, and the next: a December deadline counts into January.
    let missing: Vec<String> = [this_year, this_year + 1]
        .into_iter()
        .filter(|y| !calendar.covers(*y))
        .map(|y| y.to_string())
        .collect();
    let warning = if missing.is_empty() {
        String::new()
    } else {
        let years = missing.join(" and ");
        format!(
            "; WARNING: the production calendar does not list {years}, so working-day deadlines there skip only the Labour Code's holidays — add the government's decree to a calendar file ([node] calendar)"
        )
    };
    Ok(format!(
        "{}, production calendar {} ({listed}){warning}",
        year.id, calendar.id
    ))
}

fn check_store(path: &Path) -> Result<String, String> {
    let existed = path.exists();
    // A store of a newer schema is named before anything opens it for writing (redb rewrites
    // the header of a database opened so).
    if existed
        && let Ok(schema) = crate::store::schema_of(path)
        && schema > crate::store::STORE_SCHEMA
    {
        return Err(format!(
            "{}: schema {schema}, written by a newer giasync (this build knows up to {})",
            path.display(),
            crate::store::STORE_SCHEMA
        ));
    }
    match redb::Database::create(path) {
        Ok(db) => {
            drop(db);
            if !existed {
                return Ok(format!("{} created", path.display()));
            }
            let schema = crate::store::schema_of(path).map_err(|e| e.to_string())?;
            let known = crate::store::STORE_SCHEMA;
            match schema.cmp(&known) {
                std::cmp::Ordering::Equal => {
                    Ok(format!("{} opens, schema {schema}", path.display()))
                }
                std::cmp::Ordering::Less => Ok(format!(
                    "{} opens, schema {schema}: the node upgrades it to schema {known} when it starts",
                    path.display()
                )),
                std::cmp::Ordering::Greater => Err(format!(
                    "{}: schema {schema}, written by a newer giasync (this build knows up to {known})",
                    path.display()
                )),
            }
        }
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            Ok(format!("{} is open in a running node", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn check_certificates(config: &NodeConfig, now: OffsetDateTime) -> Vec<Check> {
    let mut checks = Vec::new();
    let cert = read(&config.tls.cert).and_then(|pem| {
        let der =
            certs_from_pem(&pem).map_err(|e| format!("{}: {e}", config.tls.cert.display()))?;
        der.into_iter()
            .next()
            .ok_or_else(|| "no certificate".to_owned())
    });
    let ca = read(&config.tls.ca).and_then(|pem| {
        let der = certs_from_pem(&pem).map_err(|e| format!("{}: {e}", config.tls.ca.display()))?;
        der.into_iter()
            .next()
            .ok_or_else(|| "no certificate".to_owned())
    });
    let summary = cert
        .clone()
        .and_then(|der| summarize_der(&der).map_err(|e| e.to_string()));

    checks.push(Check::new(
        "certificate",
        summary.clone().and_then(|s| {
            let identity = match s.identity {
                Ok(Identity::Node(n)) => n,
                Ok(other) => return Err(format!("a {other} certificate, not a node's")),
                Err(e) => return Err(e),
            };
            let org = config.org().map_err(|e| e.to_string())?;
            if identity.org != org
                || identity.region != config.node.region
                || identity.municipality != config.node.municipality
            {
                return Err(format!(
                    "the certificate is for {identity} of region {}, the configuration says {org}",
                    identity.region
                ));
            }
            Ok(format!("{identity}, serial {}", s.serial))
        }),
    ));
    checks.push(Check::new(
        "key matches certificate",
        summary.clone().and_then(|s| {
            let key_pem = String::from_utf8(read(&config.tls.key)?)
                .map_err(|_| "the key file is not PEM".to_owned())?;
            let public = node_key_public(&key_pem).map_err(|e| e.to_string())?;
            if Some(public) == s.ed25519_key {
                Ok(config.tls.key.display().to_string())
            } else {
                Err(format!(
                    "{} is not the key of {}",
                    config.tls.key.display(),
                    config.tls.cert.display()
                ))
            }
        }),
    ));
    checks.push(Check::new(
        "certificate expiry",
        summary.clone().and_then(|s| {
            let days = (s.not_after - now).whole_days();
            if now < s.not_before {
                Err(format!(
                    "not valid before {} (check the clock)",
                    giasync_certs::show::rfc3339(s.not_before)
                ))
            } else if now > s.not_after {
                Err(format!(
                    "expired on {}",
                    giasync_certs::show::rfc3339(s.not_after)
                ))
            } else if days < CERT_EXPIRY_DAYS_MIN {
                Err(format!("expires in {days} days: renew it before the exam"))
            } else if days < crate::app::status::CERT_RENEW_DAYS {
                Ok(format!(
                    "{days} days left: renew it this month (docs/operations.md, Renew)"
                ))
            } else {
                Ok(format!("{days} days left"))
            }
        }),
    ));
    checks.push(Check::new(
        "CA",
        ca.clone().and_then(|ca_der| {
            let ca_summary = summarize_der(&ca_der).map_err(|e| e.to_string())?;
            if !ca_summary.is_ca {
                return Err(format!(
                    "{} is not a CA certificate",
                    config.tls.ca.display()
                ));
            }
            verify_issued_by(&cert.clone()?, &ca_der)?;
            Ok(format!(
                "{} issued this node's certificate",
                ca_summary.subject
            ))
        }),
    ));
    checks.push(Check::new(
        "revocation list",
        ca.and_then(|ca_der| {
            let pem = read(&config.tls.crl)?;
            let der =
                crls_from_pem(&pem).map_err(|e| format!("{}: {e}", config.tls.crl.display()))?;
            let crl_der = der.first().ok_or_else(|| "no revocation list".to_owned())?;
            verify_crl_issued_by(crl_der, &ca_der)?;
            let crl = summarize_crl_der(crl_der).map_err(|e| e.to_string())?;
            if let Ok(s) = &summary
                && crl.revoked.iter().any(|(serial, _)| *serial == s.serial)
            {
                return Err(format!("this node's certificate {} is revoked", s.serial));
            }
            if let Some(next) = crl.next_update
                && next < now
            {
                return Err(format!(
                    "out of date since {}: connections are refused; get a fresh crl.pem",
                    giasync_certs::show::rfc3339(next)
                ));
            }
            if let Some(next) = crl.next_update
                && next - now < time::Duration::days(giasync_certs::verify::CRL_WARN_DAYS)
            {
                return Err(format!(
                    "runs out at {}, within {} days: get a fresh crl.pem from the РЦОИ",
                    giasync_certs::show::rfc3339(next),
                    giasync_certs::verify::CRL_WARN_DAYS
                ));
            }
            Ok(format!(
                "number {}, {} revoked",
                crl.number.unwrap_or(0),
                crl.revoked.len()
            ))
        }),
    ));
    checks
}

/// The pages' certificate: it loads with its key, its CA signed it, it is valid for a while
/// yet, and it names every host in `[node] web_names` (a browser reaching the pages by a name
/// the certificate lacks shows a warning, and staff learn to click through warnings).
fn check_page_certificate(
    web_tls: &giasync_shared::config::WebTlsSection,
    web_names: &[giasync_shared::config::HostName],
    now: OffsetDateTime,
) -> Result<String, String> {
    crate::web::tls::server_config(&web_tls.cert, &web_tls.key).map_err(|e| e.to_string())?;
    let chain = certs_from_pem(&read(&web_tls.cert)?)
        .map_err(|e| format!("{}: {e}", web_tls.cert.display()))?;
    let (Some(leaf), Some(ca)) = (chain.first(), chain.get(1)) else {
        return Err(format!(
            "{}: the certificate and then the pages' CA (web-ca.crt), as `giasync-certs web` writes it",
            web_tls.cert.display()
        ));
    };
    // The region's pages CA as `giasync-certs web` wrote it beside the certificate, when it
    // is there: what the browsers trust, not merely what the file bundles.
    let beside = web_tls.cert.with_file_name("web-ca.crt");
    if beside.exists() {
        let trusted =
            certs_from_pem(&read(&beside)?).map_err(|e| format!("{}: {e}", beside.display()))?;
        if trusted.first() != Some(ca) {
            return Err(format!(
                "the CA bundled in {} is not {}, the one browsers are told to trust",
                web_tls.cert.display(),
                beside.display()
            ));
        }
    }
    verify_issued_by(leaf, ca)?;
    let leaf = summarize_der(leaf).map_err(|e| e.to_string())?;
    let missing: Vec<&str> = web_names
        .iter()
        .map(giasync_shared::config::HostName::as_str)
        .filter(|name| !leaf.host_names.iter().any(|h| h.eq_ignore_ascii_case(name)))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "does not name {} from [node] web_names: browsers would warn; issue it again with every name",
            missing.join(", ")
        ));
    }
    let days = (leaf.not_after - now).whole_days();
    if now < leaf.not_before || now > leaf.not_after {
        return Err(format!(
            "not valid now (valid {} – {})",
            giasync_certs::show::rfc3339(leaf.not_before),
            giasync_certs::show::rfc3339(leaf.not_after)
        ));
    }
    if days < CERT_EXPIRY_DAYS_MIN {
        return Err(format!(
            "expires in {days} days: issue a new one (`giasync-certs web`)"
        ));
    }
    Ok(format!(
        "for {}, {days} days left",
        leaf.host_names.join(", ")
    ))
}

async fn check_upstreams(
    config: &NodeConfig,
    material: &TlsMaterial,
    timeout: Duration,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (i, upstream) in config.upstreams.iter().enumerate() {
        let name = format!(
            "upstream {} ({} {} at {})",
            i + 1,
            upstream.role,
            upstream.code,
            upstream.addr
        );
        let Ok(expected) = upstream.org() else {
            checks.push(Check::new(name, Err("invalid code".into())));
            continue;
        };
        let quic = reach_over_quic(material, upstream, expected, timeout).await;
        let quic_refused = matches!(&quic, Err((_, true)));
        let quic = quic.map_err(|(e, _)| e);
        let tcp = match upstream.tcp {
            Some(addr) => Some((
                addr,
                reach_over_tcp(material, upstream, addr, expected, timeout).await,
            )),
            None => None,
        };
        let (outcome, reached) = match (quic, tcp) {
            (Ok(q), None) => (Ok(format!("reached over QUIC, {}", q.describe())), Some(q)),
            (Ok(q), Some((addr, Ok(_)))) => (
                Ok(format!(
                    "reached over QUIC, {}; the TCP fallback at {addr} works too",
                    q.describe()
                )),
                Some(q),
            ),
            (Ok(q), Some((addr, Err(e)))) => (
                Ok(format!(
                    "reached over QUIC, {}; the TCP fallback at {addr} does not work: {e}",
                    q.describe()
                )),
                Some(q),
            ),
            // A refusal over QUIC (the wrong node, a revoked certificate) is not a dropped
            // UDP: the node does not fall back to TCP then, so neither does the check.
            (Err(e), Some((addr, Ok(_)))) if quic_refused => (
                Err(format!(
                    "QUIC: {e}; the TCP fallback at {addr} answers, but the node does not fall back on a refusal"
                )),
                None,
            ),
            (Err(e), Some((addr, Ok(t)))) => (
                Ok(format!(
                    "reached over TCP at {addr} only: the node syncs over its fallback, {} (QUIC: {e})",
                    t.describe()
                )),
                Some(t),
            ),
            (Err(e), Some((addr, Err(te)))) => (
                Err(format!("QUIC: {e}; the TCP fallback at {addr}: {te}")),
                None,
            ),
            (Err(e), None) => (Err(e), None),
        };
        checks.push(Check::new(name, outcome));
        if let Some(reached) = reached {
            let skew = reached.clock_skew_ms;
            let outcome = if skew.abs() <= CLOCK_SKEW_MS_MAX {
                Ok(format!("{skew:+} ms"))
            } else {
                Err(format!(
                    "{skew:+} ms: more than {} s apart, fix this computer's clock",
                    CLOCK_SKEW_MS_MAX / 1000
                ))
            };
            checks.push(Check::new(format!("clock vs upstream {}", i + 1), outcome));
        }
    }
    checks
}

/// What reaching an upstream showed.
struct Reached {
    identity: giasync_certs::identity::NodeIdentity,
    rtt_ms: u128,
    clock_skew_ms: i64,
}

impl Reached {
    /// What a client's hello measured (a client always measures both).
    fn at_hello(
        identity: giasync_certs::identity::NodeIdentity,
        rtt: Option<Duration>,
        clock_skew_ms: Option<i64>,
    ) -> Self {
        Reached {
            identity,
            rtt_ms: rtt.map_or(0, |d| d.as_millis()),
            clock_skew_ms: clock_skew_ms.unwrap_or(0),
        }
    }

    fn describe(&self) -> String {
        format!("proved {}, round trip {} ms", self.identity, self.rtt_ms)
    }
}

/// Connects to `upstream` over QUIC and says what it showed, or why it failed and whether
/// that was a refusal of a certificate (either side's).
async fn reach_over_quic(
    material: &TlsMaterial,
    upstream: &giasync_shared::config::Upstream,
    expected: giasync_shared::codes::OrgCode,
    timeout: Duration,
) -> Result<Reached, (String, bool)> {
    let unspecified = match upstream.addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let attempt = async {
        let endpoint = transport::endpoint(SocketAddr::new(unspecified, 0), None)?;
        let peer = transport::connect(&endpoint, material, upstream.addr, &upstream.host, expected)
            .await?;
        peer.connection.close(0u32.into(), b"doctor done");
        endpoint.wait_idle().await;
        Ok::<_, transport::TransportError>(peer)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err((
            format!(
                "no answer within {} ms (is it running? is UDP port {} open on the way?)",
                timeout.as_millis(),
                upstream.addr.port()
            ),
            false,
        )),
        Ok(Err(e)) => {
            let refused = matches!(
                e,
                transport::TransportError::PeerRefused { .. }
                    | transport::TransportError::RefusedByPeer { .. }
            );
            Err((e.to_string(), refused))
        }
        Ok(Ok(peer)) => Ok(Reached::at_hello(
            peer.identity,
            peer.hello_rtt,
            peer.clock_skew_ms,
        )),
    }
}

/// Connects to `upstream`'s TCP fallback at `addr` and says what it showed, or why it failed.
async fn reach_over_tcp(
    material: &TlsMaterial,
    upstream: &giasync_shared::config::Upstream,
    addr: SocketAddr,
    expected: giasync_shared::codes::OrgCode,
    timeout: Duration,
) -> Result<Reached, String> {
    let attempt = transport::tcp::connect(material, addr, &upstream.host, expected);
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(format!(
            "no answer within {} ms (is TCP port {} open on the way?)",
            timeout.as_millis(),
            addr.port()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(peer)) => Ok(Reached::at_hello(
            peer.identity,
            peer.hello_rtt,
            peer.clock_skew_ms,
        )),
    }
}

/// The readiness part of the check (seed 002 §26): the exam, and a test recording made with the
/// recording software on this computer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck {
    pub exam: giasync_shared::exam::ExamId,
    pub recording: Option<std::path::PathBuf>,
}

/// What the running node finds of the exam kind's automatic readiness checks (its link, its
/// clock against its upstream's, the materials package held, the test recording read back),
/// a line each; one failing line when the node is not running.
pub fn check_readiness(config_path: &Path, readiness: &ReadinessCheck) -> Vec<Check> {
    let asked = (|| -> Result<crate::admin::Response, String> {
        let config = NodeConfig::load(config_path).map_err(|e| e.to_string())?;
        if std::os::unix::net::UnixStream::connect(crate::admin::socket_path(&config.node.store))
            .is_err()
        {
            return Err(
                "the node is not running (giasync-node run): the readiness checks are the running node's"
                    .into(),
            );
        }
        let context = crate::app::Context::load(&config).map_err(|e| e.to_string())?;
        crate::admin::execute(
            &config,
            &context,
            &crate::app::Command::ReadinessFindings {
                exam: readiness.exam,
                test_recording: readiness.recording.clone(),
            },
            crate::run::now_ms(),
        )
        .map_err(|e| e.to_string())
    })();
    let name = |id: &str| format!("readiness {}: {id}", readiness.exam);
    match asked {
        Ok(crate::admin::Response {
            answer: Some(crate::app::Answer::ReadinessFindings { findings, .. }),
            ..
        }) => findings
            .into_iter()
            .map(|f| Check::new(name(&f.id), if f.ok { Ok(f.note) } else { Err(f.note) }))
            .collect(),
        Ok(other) => vec![Check::new(name("checks"), Err(other.message))],
        Err(e) => vec![Check::new(name("checks"), Err(e))],
    }
}

/// Runs the checks on a fresh runtime, prints one line per check and returns whether all
/// passed: the body of `giasync-node doctor` and `giasync-hub doctor`.
pub fn report(config_path: &Path, upstream_timeout: Duration) -> Result<bool, std::io::Error> {
    report_with(config_path, upstream_timeout, None)
}

/// [`report`], with the readiness checks of an exam when `readiness` is given
/// (`giasync-node doctor --exam E [--recording FILE]`).
pub fn report_with(
    config_path: &Path,
    upstream_timeout: Duration,
    readiness: Option<&ReadinessCheck>,
) -> Result<bool, std::io::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut checks = runtime.block_on(run(
        config_path,
        OffsetDateTime::now_utc(),
        upstream_timeout,
    ));
    if let Some(readiness) = readiness {
        checks.extend(check_readiness(config_path, readiness));
    }
    for check in &checks {
        println!("{}", check.line());
    }
    let failed = checks.iter().filter(|c| c.outcome.is_err()).count();
    if failed == 0 {
        println!("all {} checks passed", checks.len());
    } else {
        println!("{failed} of {} checks failed", checks.len());
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock check names the offset given, and warns when none is.
    #[test]
    fn the_clock_check_warns_when_no_offset_is_given() {
        assert!(!region_clock(Some("+07:00".parse().unwrap())).contains("WARNING"));
        assert!(region_clock(Some("+07:00".parse().unwrap())).starts_with("UTC+07:00"));
        assert!(region_clock(None).contains("WARNING: [node] utc_offset is not set"));
    }

    /// The store check names the schema, says an older one is upgraded at start, and fails on
    /// one a newer giasync wrote.
    #[test]
    fn the_store_check_names_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current.redb");
        drop(crate::store::Store::open(&current).unwrap());
        let line = check_store(&current).unwrap();
        assert!(line.ends_with("opens, schema 2"), "{line}");

        let older = dir.path().join("older.redb");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/store-schema-1.redb"
            ),
            &older,
        )
        .unwrap();
        let line = check_store(&older).unwrap();
        assert!(
            line.contains("schema 1: the node upgrades it to schema 2"),
            "{line}"
        );

        {
            let db = redb::Database::create(&current).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap()
                .insert("schema", 3)
                .unwrap();
            tx.commit().unwrap();
        }
        let refused = check_store(&current).unwrap_err();
        assert!(
            refused.contains("schema 3, written by a newer giasync"),
            "{refused}"
        );
    }
}
