//! `giasync-certs`: the region's PKI for operators.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use giasync_certs::demo::{DemoOptions, demo};
use giasync_certs::enrol::{Register, sign};
use giasync_certs::identity::{NodeIdentity, PersonIdentity};
use giasync_certs::keyfile::{KdfParams, Pin};
use giasync_certs::pki::{NODE_VALIDITY_DAYS, PERSON_VALIDITY_DAYS, Pki, Validity, write_atomic};
use giasync_certs::show::describe;
use giasync_certs::web::{WEB_VALIDITY_DAYS, WebName, write_web_files};
use giasync_shared::codes::{
    MunicipalityCode, NodeRole, OrgCode, PersonId, PersonRole, RegionCode,
};
use time::OffsetDateTime;

/// The region's PKI: its CA, node and person certificates, revocations, and a demo region.
#[derive(Debug, Parser)]
#[command(name = "giasync-certs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the region's CA (ed25519) in a new folder; refuses to overwrite an existing CA.
    Init {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The region code, two digits (42 for Кузбасс).
        #[arg(long)]
        region: String,
        /// The CA's name, e.g. the institution running the РЦОИ.
        #[arg(long)]
        name: String,
    },
    /// Issue a node's certificate and key into --out (node.crt, node.key, ca.crt, crl.pem).
    Node {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// school, municipality or rcoi.
        #[arg(long)]
        role: String,
        /// The organisation's code.
        #[arg(long)]
        code: String,
        /// A school's municipality code (required for schools).
        #[arg(long)]
        parent: Option<String>,
        /// The DNS name or IP address the node is reached at.
        #[arg(long)]
        host: String,
        /// The folder to write into; existing keys are never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = NODE_VALIDITY_DAYS)]
        days: i64,
    },
    /// Issue a person's signing key and certificate into --out (ID.key, ID.crt). The key is
    /// encrypted with a PIN read from the terminal or the GIASYNC_PIN environment variable.
    Person {
        #[command(flatten)]
        who: PersonArgs,
        /// The folder to write into; existing keys are never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = PERSON_VALIDITY_DAYS)]
        days: i64,
    },
    /// Issue a node's certificate for its web pages (HTTPS) into --out (web.crt, web.key,
    /// web-ca.crt). The pages have their own P-256 CA, made in the CA folder the first time
    /// (web-ca.crt, web-ca.key): browsers do not accept the region CA's ed25519. A school's
    /// browsers trust web-ca.crt; see docs/school-ui.md.
    Web {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// A host name or IP address browsers reach the pages by; repeat for more (the first
        /// is the certificate's common name). List the same names in `[node] web_names`.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// The node's folder to write into; an existing web.key is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days (at most 397: page certificates are not revoked, they expire).
        #[arg(long, default_value_t = WEB_VALIDITY_DAYS)]
        days: i64,
    },
    /// Revoke a certificate by serial and re-issue the signed revocation list (crl.pem).
    Revoke {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate's serial (see `show`).
        #[arg(long)]
        serial: u64,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Re-issue the revocation list with a fresh validity (crl.pem).
    Crl {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a node's certificate for its certificate request (`giasync-node enrol`): the
    /// request's signature is checked, its organisation must be in the region's register, and
    /// the certificate gets the identity, host and usages the CA sets, for the request's key.
    /// Writes node.crt, ca.crt and crl.pem into --out, for `giasync-node install-cert`; no
    /// private key is read or written.
    Sign {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The region's register of organisations: one a line, ROLE,CODE[,MUNICIPALITY]
        /// (`school,420101,4201`, `municipality,4201`, `rcoi,42`).
        #[arg(long)]
        register: PathBuf,
        /// The folder to write node.crt, ca.crt and crl.pem into.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = NODE_VALIDITY_DAYS)]
        days: i64,
        /// The key fingerprint `giasync-node enrol` printed on the node's machine, read out by
        /// phone: checked against the request's key before anything is issued, so a request
        /// swapped on the way is refused. Without it the certificate is issued and the
        /// request's fingerprint printed, to compare after the fact.
        #[arg(long)]
        fingerprint: Option<String>,
        /// The certificate request (PEM).
        request: PathBuf,
    },
    /// Enrol a person without making their key here: record who they are and print a one-time
    /// enrolment code to hand them on paper. At the school, `giasync-node enrol-person` makes
    /// their key there, sealed with the PIN they choose, and a request under this code;
    /// `sign-person` then issues the certificate.
    EnrolPerson {
        #[command(flatten)]
        who: PersonArgs,
        /// How many days the code may be used.
        #[arg(long, default_value_t = giasync_certs::enrol_person::CODE_VALIDITY_DAYS)]
        code_days: i64,
    },
    /// Issue a person's certificate for their request (`giasync-node enrol-person`), checked
    /// against the enrolment code recorded for them (made with it, signed by its key, the code
    /// not used and not expired). Writes ID.crt into --out, for `giasync-node install-person`;
    /// no private key is read or written.
    SignPerson {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The folder to write ID.crt into.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = PERSON_VALIDITY_DAYS)]
        days: i64,
        /// The key's fingerprint as the person read it out from their screen at the school
        /// (`abcd ef01 …`): nothing is issued unless the request's key has it.
        #[arg(long)]
        fingerprint: String,
        /// The request (ID.request).
        request: PathBuf,
    },
    /// Print the identity, validity and serial of a certificate, or the entries of a
    /// revocation list.
    Show {
        /// A PEM file.
        file: PathBuf,
    },
    /// Generate a complete demo region on loopback into a new folder.
    Demo {
        /// The folder to create (must be empty or absent).
        #[arg(long)]
        out: PathBuf,
        /// How many municipalities (МОУО).
        #[arg(long, default_value_t = 2)]
        municipalities: u16,
        /// How many schools in each municipality.
        #[arg(long, default_value_t = 2)]
        schools_per_municipality: u16,
        /// The РЦОИ's UDP port; the other nodes take the ports after it.
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
        /// Serve every node's pages over HTTPS, with page certificates from the region's pages
        /// CA (trust pki/web-ca.crt in the browser).
        #[arg(long)]
        https: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whether two key fingerprints are the same, however they were written down (spaces, colons
/// or dashes between the groups, either case).
fn same_fingerprint(a: &str, b: &str) -> bool {
    let plain = |f: &str| f.replace([' ', ':', '-'], "").to_lowercase();
    plain(a) == plain(b)
}

fn refuse_existing(paths: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        bail!("{} already exists; refusing to overwrite it", p.display());
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { dir, region, name } => {
            let region = RegionCode::new(&region).context("--region")?;
            Pki::init(&dir, region, &name, now())?;
            println!("created the CA of region {region} in {}", dir.display());
        }
        Command::Node {
            dir,
            role,
            code,
            parent,
            host,
            out,
            days,
        } => node(&dir, &role, &code, parent.as_deref(), &host, &out, days)?,
        Command::Person { who, out, days } => {
            let pki = Pki::open(&who.dir)?;
            let identity = person_identity(&pki, &who)?;
            person(pki, &identity, &who.name, &out, days)?;
        }
        Command::Web {
            dir,
            names,
            out,
            days,
        } => {
            let pki = Pki::open(&dir)?;
            let parsed = names
                .iter()
                .map(|n| WebName::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .context("--name")?;
            write_web_files(&pki, &out, &parsed, days, now())?;
            println!(
                "issued the page certificate for {} into {}; browsers trust {}",
                names.join(", "),
                out.display(),
                out.join("web-ca.crt").display()
            );
        }
        Command::Revoke {
            dir,
            serial,
            reason,
        } => {
            let mut pki = Pki::open(&dir)?;
            pki.revoke(serial, &reason, now())?;
            println!(
                "revoked certificate {serial}; distribute {}",
                dir.join("crl.pem").display()
            );
        }
        Command::Crl { dir } => {
            let mut pki = Pki::open(&dir)?;
            pki.reissue_crl(now())?;
            println!("re-issued {}", dir.join("crl.pem").display());
        }
        Command::Sign {
            dir,
            register,
            out,
            days,
            fingerprint,
            request,
        } => {
            let mut pki = Pki::open(&dir)?;
            let register = Register::read(&register, pki.region())?;
            let text = std::fs::read_to_string(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let theirs = giasync_certs::enrol::request_fingerprint(&text)
                .with_context(|| format!("{}", request.display()))?;
            if let Some(expected) = &fingerprint
                && !same_fingerprint(&theirs, expected)
            {
                anyhow::bail!(
                    "{}: the request's key has the fingerprint {theirs}, not {expected}: nothing was issued",
                    request.display()
                );
            }
            let files = ["node.crt", "ca.crt", "crl.pem"].map(|f| out.join(f));
            refuse_existing(&files[..1])?;
            let (identity, serial, cert) = sign(
                &mut pki,
                &text,
                &register,
                Validity::days_from(now(), days)?,
            )
            .with_context(|| format!("{}", request.display()))?;
            std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
            write_atomic(&files[0], cert.as_bytes(), false)?;
            write_atomic(&files[1], pki.ca_cert_pem().as_bytes(), false)?;
            write_atomic(&files[2], pki.crl_pem()?.as_bytes(), false)?;
            let checked = if fingerprint.is_some() {
                "checked"
            } else {
                "not checked: the same as the node's enrol printed?"
            };
            println!(
                "issued certificate {serial} for {identity} (key fingerprint {theirs}, {checked}) into {}: take node.crt, ca.crt and crl.pem to the node (giasync-node install-cert)",
                out.display()
            );
        }
        Command::EnrolPerson { who, code_days } => {
            if !(1..=CODE_DAYS_MAX).contains(&code_days) {
                anyhow::bail!("--code-days {code_days}: from 1 to {CODE_DAYS_MAX}");
            }
            let pki = Pki::open(&who.dir)?;
            let identity = person_identity(&pki, &who)?;
            let name = &who.name;
            let expires = now() + time::Duration::days(code_days);
            let code = giasync_certs::enrol_person::issue_code(&pki, &identity, name, expires)?;
            println!("enrolment code for {identity} ({name}): {code}");
            println!(
                "valid until {}, once; hand it to the person on paper, never with the request",
                giasync_certs::show::rfc3339(expires)
            );
        }
        Command::SignPerson {
            dir,
            out,
            days,
            fingerprint,
            request,
        } => {
            let mut pki = Pki::open(&dir)?;
            let text = std::fs::read_to_string(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let parsed = giasync_certs::enrol_person::PersonRequest::parse(&text)
                .with_context(|| format!("{}", request.display()))?;
            // The key read out by phone must be the request's: a request made with a code that
            // leaked, by someone else, has another.
            let theirs = giasync_certs::enrol::fingerprint(&parsed.public_key()?);
            if !same_fingerprint(&theirs, &fingerprint) {
                anyhow::bail!(
                    "{}: the request's key has the fingerprint {theirs}, not {fingerprint}: nothing was issued",
                    request.display()
                );
            }
            let target = out.join(format!("{}.crt", parsed.identity()?.id));
            refuse_existing(std::slice::from_ref(&target))?;
            // The folder before the code is spent: a certificate has somewhere to go.
            std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
            let (identity, serial, cert) = giasync_certs::enrol_person::sign(
                &mut pki,
                &parsed,
                now(),
                Validity::days_from(now(), days)?,
            )
            .with_context(|| format!("{}", request.display()))?;
            write_atomic(&target, cert.as_bytes(), false)?;
            println!(
                "issued certificate {serial} for {identity} (key fingerprint {theirs}) into {}: take it to the school (giasync-node install-person)",
                target.display()
            );
        }
        Command::Show { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            print!(
                "{}",
                describe(&bytes, now()).with_context(|| format!("{}", file.display()))?
            );
        }
        Command::Demo {
            out,
            municipalities,
            schools_per_municipality,
            base_port,
            https,
        } => {
            let options = DemoOptions {
                out: out.clone(),
                municipalities,
                schools_per_municipality,
                base_port,
                kdf: KdfParams::DEFAULT,
                https,
                utc_offset: None,
            };
            let region = demo(&options, now())?;
            println!(
                "demo region {} in {}: {} nodes, {} people; see region.json",
                region.region,
                out.display(),
                region.nodes.len(),
                region.people.len()
            );
        }
    }
    Ok(())
}

fn node(
    dir: &Path,
    role: &str,
    code: &str,
    parent: Option<&str>,
    host: &str,
    out: &Path,
    days: i64,
) -> anyhow::Result<()> {
    let mut pki = Pki::open(dir)?;
    let role: NodeRole = role.parse().context("--role")?;
    let org = OrgCode::parse(role, code).context("--code")?;
    let municipality = parent
        .map(MunicipalityCode::new)
        .transpose()
        .context("--parent")?;
    let identity = NodeIdentity::new(pki.region(), org, municipality)?;
    let files = ["node.key", "node.crt"].map(|f| out.join(f));
    refuse_existing(&files)?;
    let serial = pki.write_node_files(out, identity, host, Validity::days_from(now(), days)?)?;
    println!(
        "issued certificate {} for {identity} into {}",
        serial,
        out.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// The longest an enrolment code may be valid: a school year.
const CODE_DAYS_MAX: i64 = 365;

/// Who a person is, as `person` and `enrol-person` take it.
#[derive(clap::Args, Debug)]
struct PersonArgs {
    /// The CA folder.
    #[arg(long)]
    dir: PathBuf,
    /// expert, interviewer, organiser, technician, head, coordinator or operator.
    #[arg(long)]
    role: String,
    /// The person's id (latin letters, digits, '.', '_', '-').
    #[arg(long)]
    id: String,
    /// The person's full name (ФИО); the certificate carries it.
    #[arg(long)]
    name: String,
    /// The code of the organisation they work for.
    #[arg(long)]
    org: String,
    /// The kind of that organisation; by default rcoi for operators, municipality for
    /// coordinators, school for the rest.
    #[arg(long)]
    org_role: Option<String>,
}

/// The identity the person `who` names (at their organisation of kind `org_role`, or the role's
/// usual kind) has in `pki`'s region.
fn person_identity(pki: &Pki, who: &PersonArgs) -> anyhow::Result<PersonIdentity> {
    let role: PersonRole = who.role.parse().context("--role")?;
    let id = PersonId::new(&who.id).context("--id")?;
    let org = who.org.as_str();
    let org_role: NodeRole = match who.org_role.as_deref() {
        Some(text) => text.parse().context("--org-role")?,
        None if role == PersonRole::Operator => NodeRole::Rcoi,
        None if role == PersonRole::Coordinator => NodeRole::Municipality,
        None => NodeRole::School,
    };
    let org = OrgCode::parse(org_role, org).context("--org")?;
    Ok(PersonIdentity {
        region: pki.region(),
        role,
        id,
        org,
    })
}

fn person(
    mut pki: Pki,
    identity: &PersonIdentity,
    name: &str,
    out: &Path,
    days: i64,
) -> anyhow::Result<()> {
    let (role, id) = (identity.role, identity.id);
    let files = [out.join(format!("{id}.key")), out.join(format!("{id}.crt"))];
    refuse_existing(&files)?;
    let prompt = if giasync_certs::keyfile::needs_passphrase(role) {
        format!(
            "Passphrase for {id} (at least {} characters): ",
            giasync_certs::keyfile::PASSPHRASE_CHARS_MIN
        )
    } else {
        format!("PIN for {id}: ")
    };
    let pin = Pin::read(&prompt, true)?;
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    let credentials = pki.issue_person(
        identity,
        name,
        Validity::days_from(now(), days)?,
        &pin,
        KdfParams::DEFAULT,
    )?;
    write_atomic(&files[0], &credentials.key_file, true)?;
    write_atomic(&files[1], credentials.cert_pem.as_bytes(), false)?;
    println!(
        "issued certificate {} for {identity} into {}",
        credentials.serial,
        out.display()
    );
    Ok(())
}
