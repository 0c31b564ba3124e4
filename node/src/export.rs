//! Exports at the РЦОИ (`giasync-hub export write|verify`, and the demo region): build through
//! the running hub or on its store, sign the manifest with the node key, check a copy anywhere.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use giasync_shared::codes::OrgCode;
use giasync_shared::export::{ExportFile, MANIFEST_FILE, SIGNATURE_FILE};

/// The signer's certificate (PEM) beside the manifest.
pub const SIGNER_CERT_FILE: &str = "signer.crt";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// Builds the export at the РЦОИ (through the running hub, or on its store) and writes it signed.
pub fn write(config_path: &Path, exam: Option<String>, out: &Path) -> anyhow::Result<()> {
    let config = giasync_shared::config::NodeConfig::load(config_path)?;
    let context = crate::app::Context::load(&config)?;
    let now = now_ms();
    let exam = match exam {
        Some(e) => e.parse()?,
        None => crate::app::default_exam(
            giasync_shared::calendar::Timestamp::from_unix_ms(now)?.date_at(context.clock),
        )?,
    };
    if out.join(MANIFEST_FILE).exists() {
        bail!(
            "{} already holds an export; choose another folder",
            out.display()
        );
    }
    let building = crate::progress::Phase::start(format!("building the export of {exam}"));
    let response = crate::admin::execute(
        &config,
        &context,
        &crate::app::Command::Export { exam },
        now,
    )?;
    if !response.ok {
        drop(building);
        bail!("{}", response.message);
    }
    building.finish(format!("built the export of {exam}"));
    let key = crate::person::load_node_key(&config.tls.key)?;
    let material = crate::transport::TlsMaterial::from_config(&config.tls)?;
    if !matches!(material.identity.org, OrgCode::Rcoi(_)) {
        bail!(
            "{} is not the РЦОИ: exports are signed there",
            material.identity
        );
    }
    let mut files: Vec<ExportFile> = Vec::new();
    let tables =
        crate::progress::steps(response.export.len() as u64, "tables and their XLSX copies");
    for f in response.export {
        tables.inc(1);
        // An XLSX copy of every table, for offices that open it in a spreadsheet.
        let xlsx = match f.name.strip_suffix(".csv") {
            Some(sheet) => Some(ExportFile {
                name: format!("{sheet}.xlsx"),
                bytes: xlsx_of(&f.text, sheet)?,
                rows: f.rows,
            }),
            None => None,
        };
        files.push(ExportFile {
            name: f.name,
            bytes: f.text.into_bytes(),
            rows: f.rows,
        });
        files.extend(xlsx);
    }
    let exam_id = exam;
    let created = giasync_shared::calendar::Timestamp::from_unix_ms(now)?.to_string();
    let (manifest, signature) = giasync_shared::export::sign_manifest(
        &files,
        material.identity.region.as_str(),
        exam_id,
        &created,
        &material.identity.to_uri(),
        &key,
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let cert = std::fs::read(&config.tls.cert)
        .with_context(|| format!("reading {}", config.tls.cert.display()))?;
    tables.finish();
    // The data first, the manifest and its signature last: a folder with a signature is whole.
    let writing = crate::progress::steps(files.len() as u64, "writing");
    for f in &files {
        giasync_certs::pki::write_atomic(&out.join(&f.name), &f.bytes, false)?;
        writing.inc(1);
    }
    writing.finish();
    giasync_certs::pki::write_atomic(&out.join(SIGNER_CERT_FILE), &cert, false)?;
    giasync_certs::pki::write_atomic(&out.join(MANIFEST_FILE), &manifest, false)?;
    giasync_certs::pki::write_atomic(&out.join(SIGNATURE_FILE), &signature, false)?;
    for f in &files {
        println!("{}: {} rows", out.join(&f.name).display(), f.rows);
    }
    println!(
        "{}: signed by {}",
        out.join(MANIFEST_FILE).display(),
        material.identity
    );
    Ok(())
}

/// The same table as an XLSX workbook of one sheet, every cell text (ids and hashes must not
/// turn into numbers).
fn xlsx_of(csv_text: &str, sheet_name: &str) -> anyhow::Result<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes());
    let rows = reader
        .records()
        .map(|record| Ok(record?.iter().map(str::to_owned).collect()))
        .collect::<Result<Vec<Vec<String>>, csv::Error>>()
        .context("reading the table back")?;
    Ok(xlsx_table(&rows, sheet_name)?)
}

/// A table as an XLSX workbook of one sheet: the first row bold (the header), every cell text.
pub fn xlsx_table(
    rows: &[Vec<String>],
    sheet_name: &str,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::XlsxError;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name)?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (r, record) in rows.iter().enumerate() {
        let row = u32::try_from(r).map_err(|_| XlsxError::RowColumnLimitError)?;
        for (c, field) in record.iter().enumerate() {
            let col = u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)?;
            if row == 0 {
                sheet.write_string_with_format(row, col, field, &bold)?;
            } else {
                sheet.write_string(row, col, field)?;
            }
        }
    }
    workbook.save_to_buffer()
}

/// Whom an export's signer must be.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// The region's РЦОИ, certified by this CA and not on the revocation list (by default
    /// `crl.pem` beside the CA certificate).
    Region { ca: &'a Path, crl: Option<&'a Path> },
    /// Whatever key the manifest names: the files match what it signed, nothing more. Anyone
    /// with a key of their own can make an export that passes this.
    AnySigner,
}

/// Checks a copy of an export; `Ok(false)` when it does not verify.
pub fn verify(dir: &Path, trust: Trust<'_>) -> anyhow::Result<bool> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))
    };
    let manifest = read(MANIFEST_FILE)?;
    let signature = read(SIGNATURE_FILE)?;
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if [MANIFEST_FILE, SIGNATURE_FILE, SIGNER_CERT_FILE].contains(&name.as_str()) {
            continue;
        }
        if entry.file_type()?.is_file() {
            files.insert(name.clone(), read(&name)?);
        }
    }
    let checked = match giasync_shared::export::verify(&manifest, &signature, &files) {
        Ok(c) => c,
        Err(e) => {
            println!("{}: does NOT verify: {e}", dir.display());
            return Ok(false);
        }
    };
    for (name, rows) in &checked.files {
        println!("{name}: {rows} rows, hash matches the manifest");
    }
    let signer = match trust {
        Trust::AnySigner => format!(
            "signed by the key named in the manifest ({}). WARNING: the signer was NOT checked \
             against the region's CA: anyone with a key of their own can make an export that \
             passes this check (pass --ca to check it is the РЦОИ's)",
            checked.signer
        ),
        Trust::Region { ca, crl } => {
            let ca_pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            // Revocations matter: without --crl, the list beside the CA certificate.
            let crl = match crl {
                Some(p) => p.to_owned(),
                None => ca.with_file_name("crl.pem"),
            };
            let crl_pem = std::fs::read(&crl).with_context(|| {
                format!(
                    "reading {} (pass the region's list with --crl)",
                    crl.display()
                )
            })?;
            let region = giasync_shared::codes::RegionCode::new(&checked.region)?;
            let verifier = giasync_certs::verify::CaVerifier::from_pem(&ca_pem, &crl_pem, region)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
            let cert_pem = read(SIGNER_CERT_FILE)?;
            let der = giasync_certs::show::certs_from_pem(&cert_pem)?
                .into_iter()
                .next()
                .context("signer.crt holds no certificate")?;
            use giasync_shared::sync::CertVerifier as _;
            match verifier.node_key(&der) {
                Ok((identity, key))
                    if key == checked.key && matches!(identity.org, OrgCode::Rcoi(_)) =>
                {
                    format!("signed by {identity}, certified by the region's CA")
                }
                Ok((identity, _)) => {
                    println!(
                        "{}: does NOT verify: signer.crt is {identity}'s, not the РЦОИ key that signed",
                        dir.display()
                    );
                    return Ok(false);
                }
                Err(e) => {
                    println!("{}: does NOT verify: signer.crt: {e}", dir.display());
                    return Ok(false);
                }
            }
        }
    };
    println!(
        "{}: export of {} (region {}, made {}) verifies; {signer}",
        dir.display(),
        checked.exam,
        checked.region,
        checked.created
    );
    Ok(true)
}
