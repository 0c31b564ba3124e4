//! Reading certificates and revocation lists back: for `giasync-certs show`, `doctor` and the
//! transport.

use std::fmt::Write as _;

use time::OffsetDateTime;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::identity::Identity;

/// `t` as RFC 3339 in UTC, to the second: `2026-11-28T07:41:53Z`.
#[must_use]
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// What a certificate says, in the terms operators need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: u64,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    /// The giasync identity, or why there is none.
    pub identity: Result<Identity, String>,
    /// The raw 32-byte ed25519 public key, when the key is ed25519.
    pub ed25519_key: Option<[u8; 32]>,
    /// The host names and IP addresses it names (a node's host; a page certificate's names).
    pub host_names: Vec<String>,
}

/// A file that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShowError {
    /// No PEM block in the text.
    #[error("no PEM certificate or revocation list found")]
    NoPem,
    /// A PEM block does not parse.
    #[error("cannot parse the {label}: {message}")]
    Parse { label: String, message: String },
    /// A serial longer than 64 bits (not issued by giasync).
    #[error("serial number longer than 64 bits")]
    LongSerial,
}

fn serial_u64(raw: &[u8]) -> Result<u64, ShowError> {
    let trimmed: Vec<u8> = raw.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.len() > 8 {
        return Err(ShowError::LongSerial);
    }
    Ok(trimmed
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| name.to_string(), str::to_owned)
}

/// Summarises one DER certificate.
pub fn summarize_der(der: &[u8]) -> Result<CertSummary, ShowError> {
    let parse_error = |message: String| ShowError::Parse {
        label: "certificate".into(),
        message,
    };
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| parse_error(e.to_string()))?;
    summarize_cert(&cert)
}

/// [`summarize_der`] of a certificate already parsed.
pub fn summarize_cert(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<CertSummary, ShowError> {
    let validity = cert.validity();
    let key = cert.public_key();
    let ed25519_key = (key.algorithm.algorithm.to_id_string() == "1.3.101.112")
        .then(|| <[u8; 32]>::try_from(key.subject_public_key.data.as_ref()).ok())
        .flatten();
    Ok(CertSummary {
        subject: common_name(cert.subject()),
        issuer: common_name(cert.issuer()),
        serial: serial_u64(cert.raw_serial())?,
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        is_ca: cert.is_ca(),
        identity: crate::identity::from_cert(cert).map_err(|e| e.to_string()),
        ed25519_key,
        host_names: host_names(cert),
    })
}

/// The DNS names and IP addresses among a certificate's subject alternative names.
fn host_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The DER contents of the PEM blocks labelled `label` in `text`, in order; an error when
/// there are none.
fn pem_blocks(text: &[u8], label: &str) -> Result<Vec<Vec<u8>>, ShowError> {
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| ShowError::Parse {
            label: "PEM".into(),
            message: e.to_string(),
        })?;
        if pem.label == label {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        return Err(ShowError::NoPem);
    }
    Ok(out)
}

/// The DER certificates in PEM `text`, in order.
pub fn certs_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, ShowError> {
    pem_blocks(text, "CERTIFICATE")
}

/// A revocation list's serials and dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    pub issuer: String,
    pub number: Option<u64>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub revoked: Vec<(u64, OffsetDateTime)>,
}

/// Summarises a DER revocation list.
pub fn summarize_crl_der(der: &[u8]) -> Result<CrlSummary, ShowError> {
    let parse_error = |message: String| ShowError::Parse {
        label: "revocation list".into(),
        message,
    };
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| parse_error(e.to_string()))?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| Ok((serial_u64(r.raw_serial())?, r.revocation_date.to_datetime())))
        .collect::<Result<_, ShowError>>()?;
    Ok(CrlSummary {
        issuer: common_name(crl.issuer()),
        number: crl.crl_number().and_then(|n| u64::try_from(n).ok()),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        revoked,
    })
}

/// The DER revocation lists in PEM `text`.
pub fn crls_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, ShowError> {
    pem_blocks(text, "X509 CRL")
}

/// A human description of every certificate or revocation list in PEM `text`.
pub fn describe(text: &[u8], now: OffsetDateTime) -> Result<String, ShowError> {
    let mut out = String::new();
    let mut found = false;
    if let Ok(certs) = certs_from_pem(text) {
        found = true;
        for der in certs {
            let c = summarize_der(&der)?;
            let days_left = (c.not_after - now).whole_days();
            let status = if now < c.not_before {
                "not yet valid".to_owned()
            } else if now > c.not_after {
                "EXPIRED".to_owned()
            } else {
                format!("valid, {days_left} days left")
            };
            let _ = writeln!(out, "certificate  {}", c.subject);
            let _ = writeln!(
                out,
                "  identity   {}",
                match &c.identity {
                    Ok(identity) => identity.to_string(),
                    Err(_) if c.is_ca => "certificate authority".to_owned(),
                    Err(e) => format!("none ({e})"),
                }
            );
            if !c.host_names.is_empty() {
                let _ = writeln!(out, "  hosts      {}", c.host_names.join(", "));
            }
            let _ = writeln!(out, "  issuer     {}", c.issuer);
            let _ = writeln!(out, "  serial     {}", c.serial);
            let _ = writeln!(
                out,
                "  validity   {} – {} ({status})",
                rfc3339(c.not_before),
                rfc3339(c.not_after)
            );
        }
    }
    if let Ok(crls) = crls_from_pem(text) {
        found = true;
        for der in crls {
            let c = summarize_crl_der(&der)?;
            let _ = writeln!(out, "revocation list of {}", c.issuer);
            let _ = writeln!(
                out,
                "  number     {}",
                c.number.map_or("-".into(), |n| n.to_string())
            );
            let next = c.next_update.map_or("-".into(), rfc3339);
            let _ = writeln!(
                out,
                "  updated    {} (next by {next})",
                rfc3339(c.this_update)
            );
            let serials: Vec<String> = c.revoked.iter().map(|(s, _)| s.to_string()).collect();
            let _ = writeln!(
                out,
                "  revoked    {}",
                if serials.is_empty() {
                    "none".into()
                } else {
                    serials.join(", ")
                }
            );
        }
    }
    if !found {
        return Err(ShowError::NoPem);
    }
    Ok(out)
}

/// Checks that `cert_der` is signed by the CA certificate `ca_der`.
pub fn verify_issued_by(cert_der: &[u8], ca_der: &[u8]) -> Result<(), String> {
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
    if cert.issuer() != ca.subject() {
        return Err(format!(
            "issued by {}, not by {}",
            common_name(cert.issuer()),
            common_name(ca.subject())
        ));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| format!("the CA's signature does not verify ({e})"))
}

/// Checks that the revocation list `crl_der` is signed by the CA certificate `ca_der`.
pub fn verify_crl_issued_by(crl_der: &[u8], ca_der: &[u8]) -> Result<(), String> {
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|e| e.to_string())?;
    let (_, crl) = CertificateRevocationList::from_der(crl_der).map_err(|e| e.to_string())?;
    if crl.issuer() != ca.subject() {
        return Err(format!(
            "issued by {}, not by {}",
            common_name(crl.issuer()),
            common_name(ca.subject())
        ));
    }
    crl.verify_signature(ca.public_key())
        .map_err(|e| format!("the CA's signature does not verify ({e})"))
}
