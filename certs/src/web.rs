//! Certificates for the nodes' web pages (HTTPS), from a second CA kept beside the region's.
//!
//! Browsers do not accept ed25519 in TLS — neither as the server's key nor as the signature on
//! a certificate — so the region's CA, whose key is ed25519, cannot vouch for a page. The pages
//! get their own CA instead: a P-256 (ECDSA) key made in the region's CA folder the first time a
//! page certificate is issued, and kept there like `ca.key`:
//!
//! | file | what |
//! |---|---|
//! | `web-ca.crt` | the pages' CA certificate: the one file a school's browsers are told to trust |
//! | `web-ca.key` | its P-256 key (PKCS#8 PEM, mode 0600): keep it offline with `ca.key` |
//!
//! A node's page certificate (`web.crt`, `web.key`) names the host names and addresses browsers
//! reach the pages by, is for server authentication only, and lasts at most
//! [`WEB_VALIDITY_DAYS_MAX`] days. Browsers do not read the region's revocation list, so a page
//! certificate is not revoked: it expires, and a leaked one is replaced by issuing a new one.
//! Nothing on the QUIC side trusts the pages' CA, and no browser needs the region's CA.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::pki::{CA_VALIDITY_DAYS, Pki, PkiError, Validity, io, write_atomic};

/// The default validity of a page certificate.
pub const WEB_VALIDITY_DAYS: i64 = 397;
/// The longest validity a page certificate may have: browsers refuse longer ones from the
/// public CAs, and a certificate that cannot be revoked should not outlive a school year by much.
pub const WEB_VALIDITY_DAYS_MAX: i64 = 397;
/// The most names one page certificate carries.
pub const WEB_NAMES_MAX: usize = 16;
/// Bytes of a page certificate's random serial number: 63 random bits, so `giasync-certs show`
/// reads it like the region CA's serials.
const SERIAL_BYTES: usize = 8;

/// A name browsers reach the pages by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebName {
    Dns(String),
    Ip(IpAddr),
}

impl WebName {
    /// A DNS name (letters, digits, `-`, `.`; 1 to 253 bytes) or an IP address.
    pub fn parse(text: &str) -> Result<WebName, PkiError> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(WebName::Ip(ip));
        }
        let ok = !text.is_empty()
            && text.len() <= 253
            && !text.starts_with(['.', '-'])
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(WebName::Dns(text.to_ascii_lowercase()))
        } else {
            Err(PkiError::WebName(text.to_owned()))
        }
    }

    fn san(&self) -> Result<SanType, PkiError> {
        Ok(match self {
            WebName::Dns(name) => SanType::DnsName(name.as_str().try_into()?),
            WebName::Ip(ip) => SanType::IpAddress(*ip),
        })
    }
}

/// A node's new page certificate (PEM: the certificate, then the pages' CA) and key.
#[derive(Debug)]
pub struct WebCredentials {
    pub chain_pem: String,
    pub key_pem: String,
    pub ca_cert_pem: String,
}

/// The pages' CA of a region, opened (or made, the first time) in the region's CA folder.
pub struct WebCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for WebCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebCa")
    }
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; SERIAL_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    // A positive integer with no leading zero byte: the top bit clear, the next one set.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

impl WebCa {
    fn paths(dir: &Path) -> [PathBuf; 2] {
        ["web-ca.crt", "web-ca.key"].map(|f| dir.join(f))
    }

    /// The pages' CA of `pki`'s folder; made now if the folder has none.
    pub fn open_or_create(pki: &Pki, now: OffsetDateTime) -> Result<WebCa, PkiError> {
        let [crt_path, key_path] = Self::paths(pki.dir());
        if crt_path.exists() {
            let corrupt = |path: &Path, message: String| PkiError::Corrupt {
                path: path.display().to_string(),
                message,
            };
            let cert_pem = fs::read_to_string(&crt_path).map_err(io(&crt_path))?;
            let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(&key_path, e.to_string()))?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                .map_err(|e| corrupt(&crt_path, e.to_string()))?;
            return Ok(WebCa { cert_pem, issuer });
        }
        if key_path.exists() {
            // A key without its certificate: never overwrite a key.
            return Err(PkiError::Exists(key_path.display().to_string()));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{} — giasync pages CA, region {}", pki.name(), pki.region()),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, pki.name());
        params.distinguished_name.push(DnType::CountryName, "RU");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial()?);
        let validity = Validity::days_from(now, CA_VALIDITY_DAYS)?;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), true)?;
        write_atomic(&crt_path, cert.pem().as_bytes(), false)?;
        Ok(WebCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The pages' CA certificate (PEM): what browsers trust.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a page certificate for `names` (the first is its common name).
    pub fn issue(
        &self,
        names: &[WebName],
        now: OffsetDateTime,
        days: i64,
    ) -> Result<WebCredentials, PkiError> {
        if names.is_empty() || names.len() > WEB_NAMES_MAX {
            return Err(PkiError::WebNames(names.len()));
        }
        if !(1..=WEB_VALIDITY_DAYS_MAX).contains(&days) {
            return Err(PkiError::WebValidity(days));
        }
        let validity = Validity::days_from(now, days)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let common_name = match &names[0] {
            WebName::Dns(name) => name.clone(),
            WebName::Ip(ip) => ip.to_string(),
        };
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names.iter().map(WebName::san).collect::<Result<_, _>>()?;
        params.serial_number = Some(random_serial()?);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(WebCredentials {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
            ca_cert_pem: self.cert_pem.clone(),
        })
    }
}

/// Issues a page certificate for `names` into the node folder `dir`: `web.key` (mode 0600),
/// `web.crt` (the certificate and the pages' CA) and `web-ca.crt` (for the school's browsers).
/// Refuses to overwrite an existing `web.key`.
pub fn write_web_files(
    pki: &Pki,
    dir: &Path,
    names: &[WebName],
    days: i64,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let key_path = dir.join("web.key");
    if key_path.exists() {
        return Err(PkiError::Exists(key_path.display().to_string()));
    }
    let ca = WebCa::open_or_create(pki, now)?;
    let credentials = ca.issue(names, now, days)?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    write_atomic(&key_path, credentials.key_pem.as_bytes(), true)?;
    write_atomic(
        &dir.join("web.crt"),
        credentials.chain_pem.as_bytes(),
        false,
    )?;
    write_atomic(
        &dir.join("web-ca.crt"),
        credentials.ca_cert_pem.as_bytes(),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use giasync_shared::codes::RegionCode;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    fn pki(dir: &Path) -> Pki {
        Pki::init(dir, RegionCode::new("42").unwrap(), "Тест", now()).unwrap()
    }

    /// What a browser's verifier says of `chain_pem` for `name` at `at`, trusting `ca_pem`:
    /// rustls's webpki, not this crate.
    fn browser_check(
        ca_pem: &str,
        chain_pem: &str,
        name: &str,
        at: OffsetDateTime,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(at.unix_timestamp()).unwrap(),
        ));
        verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                at,
            )
            .map(|_| ())
    }

    #[test]
    fn a_page_certificate_is_p256_for_its_names_and_chains_to_the_pages_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let names = [
            WebName::parse("OU-420101.local").unwrap(),
            WebName::parse("192.168.1.20").unwrap(),
        ];
        let node = dir.path().join("node");
        write_web_files(&pki, &node, &names, WEB_VALIDITY_DAYS, now()).unwrap();
        let chain = fs::read_to_string(node.join("web.crt")).unwrap();
        let web_ca = fs::read_to_string(node.join("web-ca.crt")).unwrap();
        assert_eq!(
            web_ca,
            fs::read_to_string(dir.path().join("web-ca.crt")).unwrap()
        );
        let key = fs::read_to_string(node.join("web.key")).unwrap();
        assert!(
            KeyPair::from_pem(&key)
                .unwrap()
                .is_compatible(&PKCS_ECDSA_P256_SHA256),
            "browsers take P-256"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(node.join("web.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let soon = now() + time::Duration::days(1);
        browser_check(&web_ca, &chain, "ou-420101.local", soon).unwrap();
        browser_check(&web_ca, &chain, "192.168.1.20", soon).unwrap();
        assert!(browser_check(&web_ca, &chain, "evil.example", soon).is_err());
        assert!(browser_check(&web_ca, &chain, "192.168.1.21", soon).is_err());
        let after = now() + time::Duration::days(398);
        assert!(
            browser_check(&web_ca, &chain, "ou-420101.local", after).is_err(),
            "expired"
        );
        // The region's CA (ed25519) does not vouch for pages, nor the pages' CA for nodes.
        assert!(browser_check(pki.ca_cert_pem(), &chain, "ou-420101.local", soon).is_err());

        // A second node gets a certificate from the same pages' CA.
        let other = dir.path().join("other");
        write_web_files(&pki, &other, &names[..1], 30, now()).unwrap();
        assert_eq!(
            fs::read_to_string(other.join("web-ca.crt")).unwrap(),
            web_ca
        );
    }

    #[test]
    fn bad_names_validity_and_existing_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        for bad in ["", "evil example", "-x.local", "ou/1", "ш.рф"] {
            assert!(
                matches!(WebName::parse(bad), Err(PkiError::WebName(_))),
                "{bad}"
            );
        }
        let name = [WebName::parse("ou.local").unwrap()];
        let node = dir.path().join("node");
        assert!(matches!(
            write_web_files(&pki, &node, &name, 398, now()),
            Err(PkiError::WebValidity(398))
        ));
        assert!(matches!(
            write_web_files(&pki, &node, &[], 30, now()),
            Err(PkiError::WebNames(0))
        ));
        let many = vec![name[0].clone(); 17];
        assert!(matches!(
            write_web_files(&pki, &node, &many, 30, now()),
            Err(PkiError::WebNames(17))
        ));
        write_web_files(&pki, &node, &name, 30, now()).unwrap();
        let key = fs::read(node.join("web.key")).unwrap();
        assert!(matches!(
            write_web_files(&pki, &node, &name, 30, now()),
            Err(PkiError::Exists(_))
        ));
        assert_eq!(fs::read(node.join("web.key")).unwrap(), key, "kept");
    }
}
