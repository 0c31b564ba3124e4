//! `node.toml`: a node's configuration, read by `giasync-node` and `giasync-hub` and written by
//! `giasync-certs demo`. Relative paths are relative to the file's folder.
//!
//! ```toml
//! [node]
//! region = "42"
//! role = "school"            # school | municipality | rcoi
//! code = "420101"
//! municipality = "4201"      # schools only
//! listen = "127.0.0.1:7404"  # QUIC (UDP) address this node accepts peers on
//! store = "store.redb"
//! web = "127.0.0.1:7480"     # optional: web pages (TCP); a school's interface, a hub's oversight
//! lookup = "0.0.0.0:8080"    # optional, РЦОИ only: the public result look-up (TCP)
//! people = "people"          # optional: people's certificates and sealed keys (sign-in)
//! oversight = "sign-in"      # hubs: "sign-in" (default) or "open" (behind your own proxy)
//! utc_offset = "+07:00"      # optional, default +00:00: the region's clock (Кузбасс: +07:00)
//!
//! [tls]
//! cert = "node.crt"
//! key = "node.key"
//! ca = "ca.crt"
//! crl = "crl.pem"
//!
//! [web_tls]                  # optional: serve [node] web over HTTPS (`giasync-certs web`)
//! cert = "web.crt"
//! key = "web.key"
//!
//! [[upstream]]               # in priority order: the МОУО hub first, then the РЦОИ
//! role = "municipality"
//! code = "4201"
//! addr = "127.0.0.1:7401"
//! host = "127.0.0.1"         # the DNS name or IP in the upstream's certificate
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::calendar::UtcOffset;
use crate::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};

/// The most upstreams a node may list.
pub const UPSTREAMS_MAX: usize = 8;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub tls: TlsSection,
    /// The web pages' HTTPS certificate and key. None: the pages are served over plain HTTP
    /// (loopback, or behind the region's own TLS proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_tls: Option<WebTlsSection>,
    #[serde(default, rename = "upstream", skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Upstream>,
}

/// Who this node is and where it keeps its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub region: RegionCode,
    pub role: NodeRole,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<MunicipalityCode>,
    /// The UDP address QUIC listens on (a hub) or sends from (a school: port 0 is any).
    pub listen: SocketAddr,
    /// A hub: the TCP address it also accepts its nodes on, over TLS 1.3 with the same
    /// certificates, for school networks that drop UDP (often port 443, which filters pass).
    /// None: QUIC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_tcp: Option<SocketAddr>,
    /// While an upstream is reached over TCP, how often QUIC is tried again, in seconds. None:
    /// every 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_probe_s: Option<u32>,
    pub store: PathBuf,
    /// The TCP address of the node's web pages: a school's interface, a hub's oversight (HTML
    /// in Russian and the JSON API). None: no web server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<SocketAddr>,
    /// The TCP address of the node's metrics endpoint (`GET /metrics`, the Prometheus text
    /// format: peers, documents, sheets, blobs; codes and counts, no personal data). None: not
    /// served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    /// The РЦОИ only: the TCP address of the public result look-up (participants look up their
    /// results by identity document). None: not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<SocketAddr>,
    /// A school: the folder of its people's certificates (`ID.crt`) and PIN-sealed keys
    /// (`ID.key`), offered at sign-in on the web interface. Default: `people` beside this file,
    /// when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<PathBuf>,
    /// The region's offset from UTC: deadlines of the orders count its calendar days and the
    /// pages show its time. None: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<UtcOffset>,
    /// The names browsers reach the web pages by (`ou-420101.local`), besides IP addresses and
    /// `localhost`: a request naming any other host is refused (DNS rebinding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web_names: Vec<HostName>,
    /// A hub: who may see its oversight pages and JSON (they name schools, counts, conflicts).
    #[serde(default)]
    pub oversight: OversightAccess,
    /// The most this node sends of recordings, in kbit/s, so a thin link keeps room for the
    /// rest (documents go first whatever this says). None: as fast as the link goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_kbit_s: Option<u32>,
    /// A school: the folder the recording software writes to. The node takes in each file once
    /// it has not changed for 30 s, named by the convention DATE_ROOM_SCHOOL[_PARTICIPANT[_ATTEMPT]]
    /// (`giasync_shared::recording::FileName`), then moves it to `taken/` beside it, or to
    /// `refused/` with the reason in `NAME.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_watch: Option<PathBuf>,
    /// How long recordings are kept after their exam, in months, before `audio destroy` may
    /// delete them: at least [`AUDIO_KEEP_MONTHS_MIN`] (seed 002 §55, §69), which is the
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_keep_months: Option<u32>,
    /// The year's readiness checks per exam kind (`giasync-hub readiness check FILE`); none:
    /// the ones shipped for 2024 (`shared/rules/readiness-2024.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<PathBuf>,
    /// The school year's deadlines and choices (`giasync-hub year check FILE`): who settles a
    /// conflict at the school, the chains of deadlines per exam kind; none: the ones shipped
    /// for 2023/24 (`shared/rules/year-2024.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<PathBuf>,
    /// The production calendar working-day deadlines count by (`giasync-hub calendar check
    /// FILE`); none: the one shipped (`shared/rules/calendar.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<PathBuf>,
    /// The requirements and criteria of итоговое сочинение (изложение) the РЦОИ checks the
    /// processing's results by (`giasync-hub essay check FILE`); none: the ones shipped for
    /// 2023/24 (`shared/rules/essay-2024.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essay: Option<PathBuf>,
}

/// The least `audio_kbit_s` a node may set: one piece of 256 KiB in 32 s, well within the
/// time a fetching hub waits for a piece before it asks elsewhere (2 minutes).
pub const AUDIO_KBIT_S_MIN: u32 = 64;

/// The shortest time recordings are kept after their exam (seed 002 §55: «не менее 4-х
/// месяцев со дня завершения итогового собеседования»).
pub const AUDIO_KEEP_MONTHS_MIN: u32 = 4;

/// Who may see a hub's oversight pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OversightAccess {
    /// A person of the hub's organisation signs in with their PIN: a РЦОИ operator, a МОУО
    /// coordinator (`[node] people`).
    #[default]
    SignIn,
    /// Anyone who reaches the address: for a hub behind a proxy that signs people in itself.
    Open,
}

/// A host name as browsers send it in `Host`: 1 to 253 bytes of letters, digits, `-` and `.`,
/// kept in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostName(String);

/// The longest host name (RFC 1035).
pub const HOST_NAME_BYTES_MAX: usize = 253;

impl TryFrom<String> for HostName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= HOST_NAME_BYTES_MAX
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(HostName(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "web name {text:?}: a host name is 1 to {HOST_NAME_BYTES_MAX} letters, digits, '-' and '.'"
            ))
        }
    }
}

impl From<HostName> for String {
    fn from(h: HostName) -> String {
        h.0
    }
}

impl HostName {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl NodeSection {
    /// The region's clock (UTC when the file names none).
    #[must_use]
    pub fn clock(&self) -> UtcOffset {
        self.utc_offset.unwrap_or(UtcOffset::UTC)
    }

    /// How many months recordings are kept after their exam.
    #[must_use]
    pub fn audio_keep_months(&self) -> u32 {
        self.audio_keep_months.unwrap_or(AUDIO_KEEP_MONTHS_MIN)
    }
}

/// The node's certificate, key, and the region's CA and revocation list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub crl: PathBuf,
}

/// The certificate the web pages are served with: a P-256 certificate from the region's pages
/// CA (`giasync-certs web`), since browsers do not take the ed25519 of `[tls]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebTlsSection {
    /// The certificate, then its CA (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// A node this one syncs with, and who it must prove to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub role: NodeRole,
    pub code: String,
    /// Its QUIC (UDP) address.
    pub addr: SocketAddr,
    pub host: String,
    /// Its TCP fallback address (the upstream's `[node] listen_tcp`): used when QUIC cannot
    /// reach it, while QUIC is tried again in the background. None: QUIC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
}

/// A configuration that does not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the file")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// Not TOML of the documented shape, or a field is invalid.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// Fields that are valid alone but not together.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl NodeConfig {
    /// Reads `path` and resolves relative paths against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        let mut config = NodeConfig::parse(&text, &file)?;
        let base = path.parent().unwrap_or(Path::new("."));
        match &mut config.node.people {
            Some(p) if p.is_relative() => *p = base.join(&*p),
            Some(_) => {}
            None => {
                let default = base.join("people");
                if default.is_dir() {
                    config.node.people = Some(default);
                }
            }
        }
        if let Some(p) = &mut config.node.audio_watch
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        let web_tls = config
            .web_tls
            .iter_mut()
            .flat_map(|w| [&mut w.cert, &mut w.key]);
        for p in [
            &mut config.node.store,
            &mut config.tls.cert,
            &mut config.tls.key,
            &mut config.tls.ca,
            &mut config.tls.crl,
        ]
        .into_iter()
        .chain(web_tls)
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses and checks the configuration; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            file: file.to_owned(),
            message,
        };
        config
            .org()
            .map_err(|e| invalid(format!("[node] code: {e}")))?;
        match (config.node.role, config.node.municipality) {
            (NodeRole::School, None) => {
                return Err(invalid("[node] a school names its municipality".into()));
            }
            (NodeRole::Municipality | NodeRole::Rcoi, Some(_)) => {
                return Err(invalid("[node] only a school names a municipality".into()));
            }
            _ => {}
        }
        if config.node.lookup.is_some() && config.node.role != NodeRole::Rcoi {
            return Err(invalid(
                "[node] lookup: only the РЦОИ serves the result look-up".into(),
            ));
        }
        if config.node.listen_tcp.is_some() && config.node.role == NodeRole::School {
            return Err(invalid(
                "[node] listen_tcp: a school accepts no nodes; only a hub listens on TCP".into(),
            ));
        }
        if let Some(tcp) = config.node.listen_tcp
            && Some(tcp) == config.node.web
        {
            return Err(invalid(format!(
                "[node] listen_tcp = {tcp} is also the web pages' address; give each its own"
            )));
        }
        if config.node.quic_probe_s == Some(0) {
            return Err(invalid(
                "[node] quic_probe_s = 0: QUIC is tried again at least a second apart".into(),
            ));
        }
        if config.web_tls.is_some() && config.node.web.is_none() {
            return Err(invalid(
                "[web_tls] is the certificate of the pages on [node] web, which is not set".into(),
            ));
        }
        if let Some(kbit) = config.node.audio_kbit_s
            && kbit < AUDIO_KBIT_S_MIN
        {
            return Err(invalid(format!(
                "[node] audio_kbit_s = {kbit}: at least {AUDIO_KBIT_S_MIN}, or a hub gives up waiting for a piece"
            )));
        }
        if let Some(months) = config.node.audio_keep_months
            && months < AUDIO_KEEP_MONTHS_MIN
        {
            return Err(invalid(format!(
                "[node] audio_keep_months = {months}: recordings are kept at least {AUDIO_KEEP_MONTHS_MIN} months after the exam (seed 002 §55)"
            )));
        }
        if config.upstreams.len() > UPSTREAMS_MAX {
            return Err(invalid(format!("at most {UPSTREAMS_MAX} upstreams")));
        }
        for (i, u) in config.upstreams.iter().enumerate() {
            OrgCode::parse(u.role, &u.code)
                .map_err(|e| invalid(format!("upstream {}: {e}", i + 1)))?;
            if u.host.trim().is_empty() {
                return Err(invalid(format!("upstream {}: host is empty", i + 1)));
            }
        }
        Ok(config)
    }

    /// This node's organisation.
    pub fn org(&self) -> Result<OrgCode, crate::DomainError> {
        OrgCode::parse(self.node.role, &self.node.code)
    }
}

impl Upstream {
    /// The organisation the upstream must prove to be.
    pub fn org(&self) -> Result<OrgCode, crate::DomainError> {
        OrgCode::parse(self.role, &self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHOOL: &str = r#"
[node]
region = "42"
role = "school"
code = "420101"
municipality = "4201"
listen = "127.0.0.1:7404"
store = "store.redb"

[tls]
cert = "node.crt"
key = "node.key"
ca = "ca.crt"
crl = "crl.pem"

[[upstream]]
role = "municipality"
code = "4201"
addr = "127.0.0.1:7401"
host = "127.0.0.1"
"#;

    #[test]
    fn a_school_config_parses_and_round_trips() {
        let config = NodeConfig::parse(SCHOOL, "node.toml").unwrap();
        assert_eq!(config.org().unwrap().to_string(), "school:420101");
        assert_eq!(
            config.upstreams[0].org().unwrap().to_string(),
            "municipality:4201"
        );
        let again = NodeConfig::parse(&toml::to_string(&config).unwrap(), "x").unwrap();
        assert_eq!(again, config);
        assert_eq!(config.node.clock(), UtcOffset::UTC);
        let kuzbass = SCHOOL.replace("store.redb\"", "store.redb\"\nutc_offset = \"+07:00\"");
        let config = NodeConfig::parse(&kuzbass, "node.toml").unwrap();
        assert_eq!(config.node.clock().minutes(), 420);
        // The TCP fallback's address, given with the upstream's QUIC address.
        let tcp = SCHOOL.replace(
            "host = \"127.0.0.1\"",
            "host = \"127.0.0.1\"\ntcp = \"127.0.0.1:443\"",
        );
        let config = NodeConfig::parse(&tcp, "node.toml").unwrap();
        assert_eq!(
            config.upstreams[0].tcp,
            Some("127.0.0.1:443".parse().unwrap())
        );
        assert_eq!(
            NodeConfig::parse(SCHOOL, "x").unwrap().upstreams[0].tcp,
            None
        );
        let again = NodeConfig::parse(&toml::to_string(&config).unwrap(), "x").unwrap();
        assert_eq!(again, config);
        let again = NodeConfig::parse(&toml::to_string(&config).unwrap(), "x").unwrap();
        assert_eq!(again, config);
    }

    /// Every ```toml block of the documentation, laid over a school's or a municipal hub's
    /// configuration (its tables merged in, its `[[upstream]]` in place of the sample's), loads
    /// as one of them: a field the docs name that the file does not know (`[[upstreams]]` was
    /// one) makes a node that follows them refuse to start.
    #[test]
    fn the_configuration_the_docs_show_loads() {
        let hub = SCHOOL
            .replace("role = \"school\"", "role = \"municipality\"")
            .replace(
                "code = \"420101\"\nmunicipality = \"4201\"\n",
                "code = \"4201\"\n",
            )
            .replace(
                "role = \"municipality\"\ncode = \"4201\"\naddr",
                "role = \"rcoi\"\ncode = \"42\"\naddr",
            );
        NodeConfig::parse(&hub, "hub.toml").unwrap();
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let mut blocks = 0;
        for entry in std::fs::read_dir(&docs).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for block in text.split("```toml\n").skip(1) {
                let snippet = block.split("```").next().unwrap_or_default();
                let snippet: toml::Table = toml::from_str(snippet)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{snippet}", path.display()));
                blocks += 1;
                let loads = [SCHOOL, hub.as_str()].iter().any(|base| {
                    let mut config: toml::Table = toml::from_str(base).unwrap();
                    for (key, value) in &snippet {
                        match (config.get_mut(key), value) {
                            (Some(toml::Value::Table(t)), toml::Value::Table(add)) => {
                                t.extend(add.clone());
                            }
                            _ => {
                                config.insert(key.clone(), value.clone());
                            }
                        }
                    }
                    NodeConfig::parse(&toml::to_string(&config).unwrap(), "x").is_ok()
                });
                assert!(
                    loads,
                    "{}: a configuration with\n{snippet}\ndoes not load",
                    path.display()
                );
            }
        }
        assert!(blocks >= 3, "{blocks} blocks found");
    }

    #[test]
    fn recordings_are_kept_at_least_the_orders_four_months() {
        let config = NodeConfig::parse(SCHOOL, "node.toml").unwrap();
        assert_eq!(config.node.audio_keep_months(), 4);
        let longer = SCHOOL.replace("store.redb\"", "store.redb\"\naudio_keep_months = 6");
        assert_eq!(
            NodeConfig::parse(&longer, "node.toml")
                .unwrap()
                .node
                .audio_keep_months(),
            6
        );
        let slow = SCHOOL.replace("store.redb\"", "store.redb\"\naudio_kbit_s = 16");
        let err = NodeConfig::parse(&slow, "node.toml").unwrap_err();
        assert!(err.to_string().contains("at least 64"), "{err}");
        let shorter = SCHOOL.replace("store.redb\"", "store.redb\"\naudio_keep_months = 3");
        let err = NodeConfig::parse(&shorter, "node.toml").unwrap_err();
        assert!(err.to_string().contains("at least 4 months"), "{err}");
    }

    #[test]
    fn web_tls_paths_resolve_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = SCHOOL.replace("store.redb\"", "store.redb\"\nweb = \"127.0.0.1:7480\"")
            + "\n[web_tls]\ncert = \"web.crt\"\nkey = \"/etc/giasync/web.key\"\n";
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let config = NodeConfig::load(&path).unwrap();
        let web_tls = config.web_tls.unwrap();
        assert_eq!(web_tls.cert, dir.path().join("web.crt"));
        assert_eq!(web_tls.key, Path::new("/etc/giasync/web.key"));
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases = [
            (
                SCHOOL.replace("municipality = \"4201\"\nlisten", "listen"),
                "a school names its municipality",
            ),
            (
                SCHOOL.replace("code = \"420101\"", "code = \"42a\""),
                "[node] code",
            ),
            (
                SCHOOL.replace("role = \"school\"", "role = \"teacher\""),
                "teacher",
            ),
            (
                SCHOOL.replace("code = \"4201\"\naddr", "code = \"x\"\naddr"),
                "upstream 1",
            ),
            (SCHOOL.replace("127.0.0.1:7401", "nowhere"), "addr"),
            (SCHOOL.replace("[tls]", "[tls]\nextra = 1"), "extra"),
            (
                SCHOOL.replace("store.redb\"", "store.redb\"\nutc_offset = \"UTC+7\""),
                "must be ±HH:MM",
            ),
            (
                format!("{SCHOOL}\n[web_tls]\ncert = \"web.crt\"\nkey = \"web.key\"\n"),
                "[node] web, which is not set",
            ),
            (
                SCHOOL.replace("store.redb\"", "store.redb\"\nlisten_tcp = \"0.0.0.0:443\""),
                "only a hub listens on TCP",
            ),
            (
                SCHOOL
                    .replace(
                        "role = \"school\"\ncode = \"420101\"\nmunicipality = \"4201\"",
                        "role = \"municipality\"\ncode = \"4201\"",
                    )
                    .replace(
                        "store.redb\"",
                        "store.redb\"\nlisten_tcp = \"0.0.0.0:443\"\nweb = \"0.0.0.0:443\"",
                    ),
                "also the web pages' address",
            ),
            (
                SCHOOL.replace(
                    "host = \"127.0.0.1\"",
                    "host = \"127.0.0.1\"\ntcp = \"hub:443\"",
                ),
                "tcp",
            ),
        ];
        for (text, expected) in cases {
            let err = NodeConfig::parse(&text, "node.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.starts_with("node.toml"),
                "{expected}: {err}"
            );
        }
    }
}
