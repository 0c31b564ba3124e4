//! The exam materials package's files (`giasync_shared::materials`, `crate::app::materials`):
//!
//! - at the РЦОИ, a file is sealed into an age file with the exam's release code as the
//!   passphrase ([`seal`]) and taken in as a blob; the code is kept in the node's materials
//!   folder, readable by the node's user only ([`keep_code`], [`read_code`]), and nowhere else
//!   until the release;
//! - at a school, a package held whole is opened with the code into the materials folder
//!   ([`open`]), where the technician prints it from (seed 002 §30).
//!
//! The folder sits beside the store file ([`dir_beside`]); each write goes to a temporary file
//! first, synced, then renamed, so a crash leaves the old file or the new one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::Secret;
use giasync_shared::blob::BlobHash;
use giasync_shared::exam::ExamId;
use giasync_shared::materials::ReleaseCode;

/// The most scrypt work factor a package may ask (2^22: about 4 s on a slow computer): what the
/// РЦОИ's machine picks (about 1 s there) with room for slower school computers.
pub const WORK_FACTOR_MAX: u8 = 22;
/// The mode of a kept code: the node's user only.
const CODE_FILE_MODE: u32 = 0o600;

/// Why a package could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum MaterialsFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("sealing: {0}")]
    Seal(String),
    #[error("the package does not open with this code, or is damaged: {0}")]
    Open(String),
    #[error("the package is not sealed with a code (an age passphrase)")]
    NotSealedWithCode,
    #[error("{path}: {text:?} is not a release code")]
    BadCodeFile { path: String, text: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MaterialsFileError + '_ {
    move |source| MaterialsFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The folder beside a store file where its materials live.
#[must_use]
pub fn dir_beside(store: &Path) -> PathBuf {
    store.with_extension("materials")
}

/// Seals `source` with `code` into `out` (an age file, passphrase recipient).
pub fn seal(source: &Path, code: &ReleaseCode, out: &mut File) -> Result<(), MaterialsFileError> {
    let from = File::open(source).map_err(io_err(source))?;
    let encryptor = age::Encryptor::with_user_passphrase(Secret::new(code.passphrase()));
    let mut writer = encryptor
        .wrap_output(BufWriter::new(out))
        .map_err(|e| MaterialsFileError::Seal(e.to_string()))?;
    io::copy(&mut BufReader::new(from), &mut writer).map_err(io_err(source))?;
    writer
        .finish()
        .and_then(|mut w| w.flush())
        .map_err(|e| MaterialsFileError::Seal(e.to_string()))
}

/// Tells temporary files written at once apart.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` through a synced temporary file and a rename, with `mode`.
fn write_atomically(
    path: &Path,
    bytes: &mut dyn Read,
    mode: u32,
) -> Result<(), MaterialsFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if let Some(parent) = dir.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io_err(parent))?;
        }
    }
    // Unique to this write: the clock's opening and a reserve code typed at once never share it.
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("partial-{}-{n}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let copied = io::copy(bytes, &mut file);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(MaterialsFileError::Open(e.to_string()));
    }
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn code_path(dir: &Path, exam: ExamId, package: &BlobHash) -> PathBuf {
    dir.join(format!("{exam}.{package}.code"))
}

/// At the РЦОИ: keeps the code of `exam`'s package `package` for its release (the node's user
/// only may read it). One file per package, never overwritten: a package named again keeps the
/// code of each.
pub fn keep_code(
    dir: &Path,
    exam: ExamId,
    package: &BlobHash,
    code: &ReleaseCode,
) -> Result<(), MaterialsFileError> {
    let text = format!("{code}\n");
    write_atomically(
        &code_path(dir, exam, package),
        &mut text.as_bytes(),
        CODE_FILE_MODE,
    )
}

/// At the РЦОИ: the kept code of `exam`'s package `package`, if any.
pub fn read_code(
    dir: &Path,
    exam: ExamId,
    package: &BlobHash,
) -> Result<Option<ReleaseCode>, MaterialsFileError> {
    let path = code_path(dir, exam, package);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| MaterialsFileError::BadCodeFile {
            path: path.display().to_string(),
            text: text.chars().take(40).collect(),
        })
}

/// Where `exam`'s materials open into: `DIR/EXAM/NAME`.
#[must_use]
pub fn opened_path(dir: &Path, exam: ExamId, name: &str) -> PathBuf {
    dir.join(exam.to_string()).join(name)
}

/// At a school: opens `package` (a held blob's file) with `code` into `DIR/EXAM/NAME`.
pub fn open(
    package: File,
    code: &ReleaseCode,
    dir: &Path,
    exam: ExamId,
    name: &str,
) -> Result<PathBuf, MaterialsFileError> {
    let decryptor = match age::Decryptor::new_buffered(BufReader::new(package)) {
        Ok(age::Decryptor::Passphrase(d)) => d,
        Ok(_) => return Err(MaterialsFileError::NotSealedWithCode),
        Err(e) => return Err(MaterialsFileError::Open(e.to_string())),
    };
    let mut reader = decryptor
        .decrypt(&Secret::new(code.passphrase()), Some(WORK_FACTOR_MAX))
        .map_err(|e| MaterialsFileError::Open(e.to_string()))?;
    let path = opened_path(dir, exam, name);
    write_atomically(&path, &mut reader, 0o640)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;
    use giasync_shared::materials::RELEASE_CODE_BYTES;

    #[test]
    fn a_sealed_package_opens_with_its_code_only() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("kim.txt");
        std::fs::write(&source, "Вариант 1. Прочитайте текст вслух.").unwrap();
        let code = ReleaseCode::from_entropy([9; RELEASE_CODE_BYTES]);
        let sealed = dir.path().join("kim.age");
        seal(&source, &code, &mut File::create(&sealed).unwrap()).unwrap();
        let bytes = std::fs::read(&sealed).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n-> scrypt "));
        assert!(!String::from_utf8_lossy(&bytes).contains("Вариант"));

        let out = dir.path().join("opened");
        let exam: ExamId = "is-2024-02-14".parse().unwrap();
        let other = ReleaseCode::from_entropy([8; RELEASE_CODE_BYTES]);
        assert!(matches!(
            open(File::open(&sealed).unwrap(), &other, &out, exam, "kim.txt"),
            Err(MaterialsFileError::Open(_))
        ));
        assert!(!opened_path(&out, exam, "kim.txt").exists());
        let path = open(File::open(&sealed).unwrap(), &code, &out, exam, "kim.txt").unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "Вариант 1. Прочитайте текст вслух."
        );
    }

    #[test]
    fn a_kept_code_reads_back_and_only_its_owner_may_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exam: ExamId = "is-2024-02-14".parse().unwrap();
        let (package, other) = (BlobHash([1; 32]), BlobHash([2; 32]));
        assert_eq!(read_code(dir.path(), exam, &package).unwrap(), None);
        let code = ReleaseCode::from_entropy([1; RELEASE_CODE_BYTES]);
        keep_code(dir.path(), exam, &package, &code).unwrap();
        assert_eq!(
            read_code(dir.path(), exam, &package).unwrap(),
            Some(code.clone())
        );
        // Another package of the exam has its own code; the first keeps its own.
        let second = ReleaseCode::from_entropy([2; RELEASE_CODE_BYTES]);
        keep_code(dir.path(), exam, &other, &second).unwrap();
        assert_eq!(read_code(dir.path(), exam, &package).unwrap(), Some(code));
        let mode = std::fs::metadata(code_path(dir.path(), exam, &package))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, CODE_FILE_MODE);
        std::fs::write(code_path(dir.path(), exam, &package), "nonsense").unwrap();
        assert!(read_code(dir.path(), exam, &package).is_err());
    }
}
