//! A complete demo region on loopback: the CA, one РЦОИ, N МОУО with M schools each, the people
//! of every school, a folder per node with a ready `node.toml`, and `region.json` listing it all.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use giasync_shared::calendar::UtcOffset;
use giasync_shared::codes::{
    MunicipalityCode, NodeRole, OrgCode, PersonId, PersonRole, RegionCode, SchoolCode,
};
use giasync_shared::config::{NodeConfig, NodeSection, TlsSection, Upstream, WebTlsSection};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::{NodeIdentity, PersonIdentity};
use crate::keyfile::{KdfParams, Pin};
use crate::pki::{NODE_VALIDITY_DAYS, PERSON_VALIDITY_DAYS, Pki, PkiError, Validity, write_atomic};
use crate::web::{WEB_VALIDITY_DAYS, WebName, write_web_files};

/// The most municipalities a demo may have.
pub const MUNICIPALITIES_MAX: u16 = 99;
/// The most schools per municipality a demo may have.
pub const SCHOOLS_PER_MUNICIPALITY_MAX: u16 = 99;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub municipalities: u16,
    pub schools_per_municipality: u16,
    /// The РЦОИ listens on this UDP port, the МОУО and schools on the ones after it.
    pub base_port: u16,
    pub kdf: KdfParams,
    /// Serve every node's pages over HTTPS (`[web_tls]`, a page certificate for `localhost`
    /// and 127.0.0.1 from the region's pages CA, `pki/web-ca.crt`).
    pub https: bool,
    /// The region's clock in every node's configuration; `None`: Кузбасс's, UTC+7. The demo
    /// region rehearses exam day today, and may pick another offset so that its day has
    /// passed 07:30, when the materials open.
    pub utc_offset: Option<UtcOffset>,
}

/// `region.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub region: RegionCode,
    pub name: String,
    /// The CA folder, relative to `region.json`.
    pub pki: String,
    pub nodes: Vec<RegionNode>,
    pub people: Vec<RegionPerson>,
}

/// A node of the demo region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionNode {
    pub role: NodeRole,
    pub code: String,
    /// The municipality of a school; the region for a МОУО; none for the РЦОИ.
    pub parent: Option<String>,
    /// The node's folder, relative to `region.json`.
    pub dir: String,
    pub addr: SocketAddr,
}

/// A person of the demo region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionPerson {
    pub role: PersonRole,
    pub id: PersonId,
    pub name: String,
    /// The code of the organisation they work for.
    pub org: String,
    pub org_role: NodeRole,
    /// The PIN-encrypted key, relative to `region.json`.
    pub key: String,
    pub cert: String,
    /// The PIN, written down for the demo only: real PINs are never stored.
    pub pin: String,
    /// The ed25519 public key, hex.
    pub public_key: String,
}

/// A demo that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The output folder already holds files.
    #[error("{0} is not empty; choose a new folder")]
    NotEmpty(String),
    /// Sizes out of range.
    #[error(
        "a demo has 1..={MUNICIPALITIES_MAX} municipalities and 1..={SCHOOLS_PER_MUNICIPALITY_MAX} schools per municipality"
    )]
    Size,
    /// The ports would run past 65535.
    #[error("base port {0} leaves too few ports for every node")]
    Ports(u16),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("invalid generated code: {0}")]
    Code(#[from] giasync_shared::DomainError),
    #[error("invalid generated identity: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("region.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("node.toml: {0}")]
    Toml(#[from] toml::ser::Error),
}

/// Surnames and patronymics by index: even ones a woman's, odd ones a man's.
const SURNAMES: [&str; 10] = [
    "Иванова",
    "Петров",
    "Смирнова",
    "Кузнецов",
    "Попова",
    "Соколов",
    "Лебедева",
    "Козлов",
    "Новикова",
    "Морозов",
];
const WOMENS_NAMES: [&str; 5] = ["Анна", "Елена", "Ольга", "Татьяна", "Марина"];
const MENS_NAMES: [&str; 5] = ["Сергей", "Дмитрий", "Алексей", "Игорь", "Павел"];
const PATRONYMICS: [&str; 10] = [
    "Викторовна",
    "Андреевич",
    "Павловна",
    "Олегович",
    "Николаевна",
    "Юрьевич",
    "Ивановна",
    "Петрович",
    "Сергеевна",
    "Михайлович",
];

/// The `n`-th demo person's full name, its surname, given name and patronymic of one gender.
fn demo_name(n: usize) -> String {
    let i = n % 10;
    let given = if i.is_multiple_of(2) {
        WOMENS_NAMES
    } else {
        MENS_NAMES
    };
    format!(
        "{} {} {}",
        SURNAMES[i],
        given[(n / 10 + i / 2) % given.len()],
        PATRONYMICS[i]
    )
}

/// A 6-digit PIN, or for those who sign what counts (experts, operators, heads) a passphrase of four
/// groups of four letters and digits (`keyfile::check_strength`).
fn pin(role: PersonRole) -> String {
    if matches!(
        role,
        PersonRole::Expert | PersonRole::Operator | PersonRole::Head
    ) {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let group = || -> String {
            (0..4)
                .map(|_| {
                    let i = rand_core::OsRng.next_u32() as usize % ALPHABET.len();
                    char::from(ALPHABET[i])
                })
                .collect()
        };
        format!("{}-{}-{}-{}", group(), group(), group(), group())
    } else {
        format!("{:06}", rand_core::OsRng.next_u32() % 1_000_000)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Builds the demo region in `options.out`.
pub fn demo(options: &DemoOptions, now: OffsetDateTime) -> Result<Region, DemoError> {
    let (m_count, s_count) = (options.municipalities, options.schools_per_municipality);
    if !(1..=MUNICIPALITIES_MAX).contains(&m_count)
        || !(1..=SCHOOLS_PER_MUNICIPALITY_MAX).contains(&s_count)
    {
        return Err(DemoError::Size);
    }
    let nodes_total = 1 + u32::from(m_count) * (1 + u32::from(s_count));
    if u32::from(options.base_port) + nodes_total > u32::from(u16::MAX) || options.base_port == 0 {
        return Err(DemoError::Ports(options.base_port));
    }
    let out = &options.out;
    if fs::read_dir(out)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(DemoError::NotEmpty(out.display().to_string()));
    }
    let region = RegionCode::new("42")?;
    let name = "Демо-регион";
    let mut pki = Pki::init(&out.join("pki"), region, name, now)?;
    let node_validity = Validity::days_from(now, NODE_VALIDITY_DAYS)?;
    let person_validity = Validity::days_from(now, PERSON_VALIDITY_DAYS)?;
    let mut region_file = Region {
        region,
        name: name.into(),
        pki: "pki".into(),
        nodes: Vec::new(),
        people: Vec::new(),
    };
    // Every node's web pages listen on TCP at the number of its QUIC (UDP) port; the РЦОИ's
    // public result look-up on the TCP port after the last node's.
    let lookup = options
        .schools_per_municipality
        .checked_add(1)
        .and_then(|n| n.checked_mul(options.municipalities))
        .and_then(|n| n.checked_add(1))
        .and_then(|n| options.base_port.checked_add(n))
        .map(|p| SocketAddr::new(LOOPBACK, p));
    let mut port = options.base_port;
    let mut next_addr = || {
        let addr = SocketAddr::new(LOOPBACK, port);
        port += 1;
        addr
    };

    let rcoi_addr = next_addr();
    let rcoi = NodeIdentity::new(region, OrgCode::Rcoi(region), None)?;
    let rcoi_upstream = Upstream {
        role: NodeRole::Rcoi,
        code: region.to_string(),
        addr: rcoi_addr,
        host: LOOPBACK.to_string(),
        tcp: None,
    };
    write_node(
        &mut pki,
        options,
        rcoi,
        rcoi_addr,
        vec![],
        node_validity,
        lookup,
    )?;
    region_file.nodes.push(RegionNode {
        role: NodeRole::Rcoi,
        code: region.to_string(),
        parent: None,
        dir: region.to_string(),
        addr: rcoi_addr,
    });
    let operator = PersonId::new(&format!("op-{region}-1"))?;
    add_person(
        &mut pki,
        options,
        &mut region_file,
        PersonRole::Operator,
        operator,
        OrgCode::Rcoi(region),
        person_validity,
    )?;

    let mut municipality_addrs = Vec::new();
    for m in 1..=m_count {
        let code = MunicipalityCode::new(&format!("{region}{m:02}"))?;
        let addr = next_addr();
        municipality_addrs.push((code, addr));
        let identity = NodeIdentity::new(region, OrgCode::Municipality(code), None)?;
        write_node(
            &mut pki,
            options,
            identity,
            addr,
            vec![rcoi_upstream.clone()],
            node_validity,
            None,
        )?;
        region_file.nodes.push(RegionNode {
            role: NodeRole::Municipality,
            code: code.to_string(),
            parent: Some(region.to_string()),
            dir: code.to_string(),
            addr,
        });
        // The МОУО's coordinator signs in to its hub's oversight pages.
        add_person(
            &mut pki,
            options,
            &mut region_file,
            PersonRole::Coordinator,
            PersonId::new(&format!("coord-{code}"))?,
            OrgCode::Municipality(code),
            person_validity,
        )?;
    }
    for (municipality, municipality_addr) in municipality_addrs {
        for s in 1..=s_count {
            let code = SchoolCode::new(&format!("{municipality}{s:02}"))?;
            let addr = next_addr();
            let identity = NodeIdentity::new(region, OrgCode::School(code), Some(municipality))?;
            let upstreams = vec![
                Upstream {
                    role: NodeRole::Municipality,
                    code: municipality.to_string(),
                    addr: municipality_addr,
                    host: LOOPBACK.to_string(),
                    tcp: None,
                },
                rcoi_upstream.clone(),
            ];
            write_node(
                &mut pki,
                options,
                identity,
                addr,
                upstreams,
                node_validity,
                None,
            )?;
            region_file.nodes.push(RegionNode {
                role: NodeRole::School,
                code: code.to_string(),
                parent: Some(municipality.to_string()),
                dir: code.to_string(),
                addr,
            });
            let staff: [(PersonRole, String); 8] = [
                (PersonRole::Head, format!("head-{code}")),
                (PersonRole::Organiser, format!("org-{code}")),
                (PersonRole::Corridor, format!("corr-{code}")),
                (PersonRole::Interviewer, format!("int-{code}-1")),
                (PersonRole::Interviewer, format!("int-{code}-2")),
                (PersonRole::Expert, format!("exp-{code}-1")),
                (PersonRole::Expert, format!("exp-{code}-2")),
                (PersonRole::Technician, format!("tech-{code}")),
            ];
            for (role, id) in staff {
                add_person(
                    &mut pki,
                    options,
                    &mut region_file,
                    role,
                    PersonId::new(&id)?,
                    OrgCode::School(code),
                    person_validity,
                )?;
            }
        }
    }
    let json = serde_json::to_string_pretty(&region_file)?;
    write_atomic(&out.join("region.json"), json.as_bytes(), true)?;
    Ok(region_file)
}

fn write_node(
    pki: &mut Pki,
    options: &DemoOptions,
    identity: NodeIdentity,
    listen: SocketAddr,
    upstreams: Vec<Upstream>,
    validity: Validity,
    lookup: Option<SocketAddr>,
) -> Result<(), DemoError> {
    let code = match identity.org {
        OrgCode::Rcoi(c) => c.to_string(),
        OrgCode::Municipality(c) => c.to_string(),
        OrgCode::School(c) => c.to_string(),
    };
    let dir = options.out.join(&code);
    pki.write_node_files(&dir, identity, &LOOPBACK.to_string(), validity)?;
    let web_tls = if options.https {
        let names = [WebName::Dns("localhost".into()), WebName::Ip(LOOPBACK)];
        let days = (validity.not_after - validity.not_before)
            .whole_days()
            .min(WEB_VALIDITY_DAYS);
        write_web_files(pki, &dir, &names, days, validity.not_before)?;
        Some(WebTlsSection {
            cert: "web.crt".into(),
            key: "web.key".into(),
        })
    } else {
        None
    };
    let config = NodeConfig {
        node: NodeSection {
            region: identity.region,
            role: identity.role(),
            code,
            municipality: identity.municipality,
            listen,
            listen_tcp: None,
            quic_probe_s: None,
            store: "store.redb".into(),
            web: Some(listen),
            lookup,
            metrics: None,
            people: None,
            // The demo region is Кузбасс (42): Кемерово keeps UTC+7.
            utc_offset: options
                .utc_offset
                .or_else(|| UtcOffset::from_minutes(7 * 60).ok()),
            // On loopback: browsers reach the demo by its address.
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
            cert: "node.crt".into(),
            key: "node.key".into(),
            ca: "ca.crt".into(),
            crl: "crl.pem".into(),
        },
        web_tls,
        upstreams,
    };
    let text = format!(
        "# giasync node configuration, generated by `giasync-certs demo`. Paths are relative to this file.\n{}",
        toml::to_string(&config)?
    );
    write_atomic(&dir.join("node.toml"), text.as_bytes(), false)?;
    Ok(())
}

fn add_person(
    pki: &mut Pki,
    options: &DemoOptions,
    region: &mut Region,
    role: PersonRole,
    id: PersonId,
    org: OrgCode,
    validity: Validity,
) -> Result<(), DemoError> {
    let (org_role, org_code) = (
        org.role(),
        match org {
            OrgCode::Rcoi(c) => c.to_string(),
            OrgCode::Municipality(c) => c.to_string(),
            OrgCode::School(c) => c.to_string(),
        },
    );
    let identity = PersonIdentity {
        region: region.region,
        role,
        id,
        org,
    };
    let name = demo_name(region.people.len());
    let pin_text = pin(role);
    let pin = Pin::new(pin_text.clone()).map_err(PkiError::from)?;
    let credentials = pki.issue_person(&identity, &name, validity, &pin, options.kdf)?;
    let folder = format!("{org_code}/people");
    let dir = options.out.join(&folder);
    fs::create_dir_all(&dir).map_err(|source| PkiError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    write_atomic(&dir.join(format!("{id}.key")), &credentials.key_file, true)?;
    write_atomic(
        &dir.join(format!("{id}.crt")),
        credentials.cert_pem.as_bytes(),
        false,
    )?;
    region.people.push(RegionPerson {
        role,
        id,
        name,
        org: org_code,
        org_role,
        key: format!("{folder}/{id}.key"),
        cert: format!("{folder}/{id}.crt"),
        pin: pin_text,
        public_key: hex(&credentials.verifying_key),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::demo_name;

    /// Each demo name's surname, given name and patronymic are of one gender (judged by their
    /// endings, as Russian grammar marks it), and the names vary.
    #[test]
    fn a_demo_persons_name_agrees_in_gender() {
        let womens_given = ["Анна", "Елена", "Ольга", "Татьяна", "Марина"];
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..200 {
            let name = demo_name(n);
            let parts: Vec<&str> = name.split(' ').collect();
            let [surname, given, patronymic] = parts[..] else {
                panic!("{name}: not three parts");
            };
            let woman = patronymic.ends_with("вна");
            assert!(woman || patronymic.ends_with("вич"), "{name}");
            assert_eq!(
                surname.ends_with("ова") || surname.ends_with("ева"),
                woman,
                "{name}"
            );
            assert_eq!(womens_given.contains(&given), woman, "{name}");
            seen.insert(name);
        }
        assert!(seen.len() >= 50, "only {} names", seen.len());
    }
}
