//! The school's side of a person's enrolment (`giasync_certs::enrol_person`). At their first
//! sign-in, `giasync-node enrol-person` makes the person's key on the school's machine, sealed
//! with the PIN they choose there, into the people folder (`ID.key`), and writes the request
//! (`ID.request`) for the РЦОИ. `giasync-node install-person` then checks the certificate the
//! РЦОИ issued and places it beside the key (`ID.crt`). The key never leaves the machine.

use std::path::{Path, PathBuf};

use giasync_certs::enrol_person::PersonRequest;
use giasync_certs::identity::PersonIdentity;
use giasync_certs::keyfile::{KdfParams, Pin};
use giasync_certs::pki::{write_atomic, write_new};
use giasync_certs::verify::CaVerifier;
use giasync_shared::codes::{PersonId, PersonRole};
use giasync_shared::config::NodeConfig;

pub use crate::enrol::Error;
use crate::enrol::{file_error, read};

/// The node's people folder: `[node] people`, or `people` beside `node.toml`.
pub fn people_dir(config: &NodeConfig, config_path: &Path) -> PathBuf {
    config.node.people.clone().unwrap_or_else(|| {
        config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("people")
    })
}

/// What [`enrol`] wrote.
#[derive(Debug)]
pub struct Enrolled {
    pub identity: PersonIdentity,
    pub key_file: PathBuf,
    pub request_file: PathBuf,
    /// The key's fingerprint, to read out by phone.
    pub fingerprint: String,
}

/// The identity of person `id` in `role` at the organisation `config` describes.
pub fn identity(
    config: &NodeConfig,
    role: PersonRole,
    id: PersonId,
) -> Result<PersonIdentity, Error> {
    Ok(PersonIdentity {
        region: config.node.region,
        role,
        id,
        org: config.org().map_err(|e| Error::Config(e.to_string()))?,
    })
}

/// Makes the key of `identity`, sealed with `pin`, into `people` (never over an existing key
/// or beside an installed certificate), and the request under enrolment `code` beside it.
pub fn enrol(
    identity: PersonIdentity,
    people: &Path,
    code: &str,
    pin: &Pin,
    kdf: KdfParams,
) -> Result<Enrolled, Error> {
    let key_file = people.join(format!("{}.key", identity.id));
    let request_file = people.join(format!("{}.request", identity.id));
    for existing in [&key_file, &people.join(format!("{}.crt", identity.id))] {
        if existing.exists() {
            return Err(file_error(
                existing,
                "exists already: a person enrolled here is not enrolled again (remove it first if the key is lost)",
            ));
        }
    }
    let (sealed, request, fingerprint) =
        giasync_certs::enrol_person::request(&identity, code, pin, kdf)?;
    std::fs::create_dir_all(people).map_err(|e| file_error(people, e))?;
    // The request first, then the key, never over another: two first sign-ins at once keep
    // the first key and its request, and a failure leaves no key without its request.
    let request_tmp = people.join(format!("{}.request.new", identity.id));
    write_atomic(&request_tmp, request.to_text().as_bytes(), false)
        .map_err(|e| file_error(&request_file, e))?;
    if let Err(e) = write_new(&key_file, &sealed, true) {
        let _ = std::fs::remove_file(&request_tmp);
        return Err(file_error(
            &key_file,
            match e {
                giasync_certs::pki::PkiError::Exists(_) => {
                    "exists already: a person enrolled here is not enrolled again (remove it first if the key is lost)".to_owned()
                }
                other => other.to_string(),
            },
        ));
    }
    if let Err(e) = std::fs::rename(&request_tmp, &request_file) {
        let _ = std::fs::remove_file(&key_file);
        let _ = std::fs::remove_file(&request_tmp);
        return Err(file_error(&request_file, e));
    }
    Ok(Enrolled {
        identity,
        key_file,
        request_file,
        fingerprint,
    })
}

/// Checks the person's certificate at `cert` (issued by this node's CA, not revoked, valid
/// now, for a person of this node's organisation whose request in `people` names the same key)
/// and places it in `people` as `ID.crt`; the request is then removed.
pub fn install(config: &NodeConfig, people: &Path, cert: &Path) -> Result<PersonIdentity, Error> {
    let cert_pem = read(cert)?;
    let der = giasync_certs::show::certs_from_pem(&cert_pem)
        .map_err(|e| Error::Refused(format!("{}: {e}", cert.display())))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Refused(format!("{} holds no certificate", cert.display())))?;
    let verifier = CaVerifier::from_pem(
        &read(&config.tls.ca)?,
        &read(&config.tls.crl)?,
        config.node.region,
    )
    .map_err(|e| Error::Refused(format!("this node's CA and revocation list: {e}")))?;
    let (identity, public_key) = verifier
        .person_key(&der)
        .map_err(|e| Error::Refused(format!("{}: {e}", cert.display())))?;
    let org = config.org().map_err(|e| Error::Config(e.to_string()))?;
    if identity.org != org {
        return Err(Error::Refused(format!(
            "the certificate is for {identity}, not a person of {org}"
        )));
    }
    let request_file = people.join(format!("{}.request", identity.id));
    let key_file = people.join(format!("{}.key", identity.id));
    if !key_file.exists() {
        return Err(Error::Refused(format!(
            "no key of {} in {} (was the person enrolled on this machine?)",
            identity.id,
            people.display()
        )));
    }
    let request_text = String::from_utf8(read(&request_file)?)
        .map_err(|_| file_error(&request_file, "not text"))?;
    let request = PersonRequest::parse(&request_text)?;
    if request.public_key()? != public_key || request.identity()? != identity {
        return Err(Error::Refused(format!(
            "the certificate is not for the key {} holds",
            key_file.display()
        )));
    }
    let target = people.join(format!("{}.crt", identity.id));
    // Only the certificate checked above, whatever else the file held.
    let text = String::from_utf8_lossy(&cert_pem);
    let checked = first_certificate_block(&text)
        .ok_or_else(|| Error::Refused(format!("{} holds no certificate", cert.display())))?;
    write_atomic(&target, format!("{checked}\n").as_bytes(), false)
        .map_err(|e| file_error(&target, e))?;
    std::fs::remove_file(&request_file).map_err(|e| file_error(&request_file, e))?;
    Ok(identity)
}

/// The first certificate block of a PEM file's text (the one `certs_from_pem` reads first).
fn first_certificate_block(pem: &str) -> Option<&str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)?;
    let end = start + pem[start..].find(END)? + END.len();
    Some(&pem[start..end])
}
