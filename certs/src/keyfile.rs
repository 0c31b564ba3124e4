//! A person's ed25519 signing key, encrypted with their PIN.
//!
//! File format (96 bytes, version 1):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `GIASKEY1` |
//! | 4, 4, 4 | Argon2id memory (KiB), iterations, parallelism, big-endian |
//! | 16 | salt |
//! | 12 | nonce |
//! | 48 | ChaCha20-Poly1305 of the 32-byte ed25519 seed, with tag; the header above is the AAD |
//!
//! The PIN goes through Argon2id (memory-hard, so guessing a short PIN from a stolen file costs
//! real time per guess) into a 256-bit key. A wrong PIN fails the AEAD tag: it never yields a
//! different key.

use argon2::{Algorithm, Argon2, Params, Version};
use ed25519_dalek::SigningKey;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: &[u8; 8] = b"GIASKEY1";
const HEADER_BYTES: usize = 8 + 12 + 16 + 12;
const SEALED_BYTES: usize = 32 + 16;
/// The size of a key file.
pub const KEY_FILE_BYTES: usize = HEADER_BYTES + SEALED_BYTES;
/// The shortest PIN accepted, in characters.
pub const PIN_CHARS_MIN: usize = 6;
/// The longest PIN accepted, in characters.
pub const PIN_CHARS_MAX: usize = 128;
/// The shortest secret of a person who signs what counts (an expert's score sheets, a head's
/// commission order and settlements, an operator's approvals), in characters: a passphrase, not a PIN. A 6-digit PIN on a copied
/// key file falls to an offline search in tens of core-hours even at the default cost; 12
/// characters do not (`docs/transport.md`).
pub const PASSPHRASE_CHARS_MIN: usize = 12;
/// The environment variable a PIN may come from instead of the terminal.
pub const PIN_ENV: &str = "GIASYNC_PIN";
/// The most Argon2 memory a key file may ask for, in KiB: bounds what opening a hostile file costs.
pub const KDF_MEMORY_KIB_MAX: u32 = 1 << 20;
/// The most Argon2 iterations a key file may ask for.
pub const KDF_ITERATIONS_MAX: u32 = 16;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 150 ms per sign-in on this project's 2-core machines
    /// (`cargo bench -p giasync-certs --bench keyfile`), four times OWASP's minimum (19 MiB, 2
    /// passes, which files made before keep and still open with). A school node derives at most
    /// two at once (the sign-in guard), so 128 MiB at most.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 65_536,
        iterations: 3,
        parallelism: 1,
    };
}

/// Whether `pin` is a strong enough secret for a person in `role`: experts, operators and heads
/// of schools (who sign the commission order and settle conflicts as its chair) need a
/// passphrase of [`PASSPHRASE_CHARS_MIN`] characters; the others a PIN.
pub fn check_strength(
    role: giasync_shared::codes::PersonRole,
    pin: &Pin,
) -> Result<(), KeyFileError> {
    if needs_passphrase(role) && pin.0.chars().count() < PASSPHRASE_CHARS_MIN {
        return Err(KeyFileError::PassphraseTooShort(role));
    }
    Ok(())
}

/// Whether a person in `role` signs what counts (scores, the commission order, the РЦОИ's
/// approvals), and so needs a passphrase rather than a PIN.
#[must_use]
pub fn needs_passphrase(role: giasync_shared::codes::PersonRole) -> bool {
    use giasync_shared::codes::PersonRole;
    matches!(
        role,
        PersonRole::Expert | PersonRole::Operator | PersonRole::Head
    )
}

/// A PIN or passphrase that unlocks a person's key.
#[derive(Clone)]
pub struct Pin(String);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

impl Pin {
    /// Checks the PIN's length ([`PIN_CHARS_MIN`]..=[`PIN_CHARS_MAX`]).
    pub fn new(pin: String) -> Result<Self, KeyFileError> {
        let chars = pin.chars().count();
        if !(PIN_CHARS_MIN..=PIN_CHARS_MAX).contains(&chars) {
            return Err(KeyFileError::PinLength);
        }
        Ok(Pin(pin))
    }

    /// Reads a PIN from [`PIN_ENV`] if set, otherwise from the terminal without echo; never from
    /// the command line, where other users could read it. `confirm` asks twice (new keys).
    pub fn read(prompt: &str, confirm: bool) -> Result<Self, KeyFileError> {
        if let Ok(pin) = std::env::var(PIN_ENV) {
            return Pin::new(pin);
        }
        let pin = rpassword::prompt_password(prompt)
            .map_err(|e| KeyFileError::Terminal(e.to_string()))?;
        if confirm {
            let again = rpassword::prompt_password("Repeat the PIN: ")
                .map_err(|e| KeyFileError::Terminal(e.to_string()))?;
            if again != pin {
                return Err(KeyFileError::PinMismatch);
            }
        }
        Pin::new(pin)
    }
}

/// A key file that cannot be written or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The PIN is too short or too long.
    #[error("a PIN has {PIN_CHARS_MIN} to {PIN_CHARS_MAX} characters")]
    PinLength,
    /// An expert's or operator's secret shorter than a passphrase.
    #[error("{} signs what counts: choose a passphrase of at least {PASSPHRASE_CHARS_MIN} characters, not a PIN", .0.display_name())]
    PassphraseTooShort(giasync_shared::codes::PersonRole),
    /// The two PINs typed differ.
    #[error("the PINs do not match")]
    PinMismatch,
    /// The terminal could not be read.
    #[error("cannot read the PIN from the terminal ({0}); set {PIN_ENV} instead")]
    Terminal(String),
    /// The file is not a giasync key file.
    #[error("not a giasync key file: {0}")]
    Malformed(&'static str),
    /// The PIN does not open the key (or the file was altered).
    #[error("wrong PIN (or the key file was altered)")]
    WrongPin,
    /// The key derivation failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

fn derive(pin: &Pin, salt: &[u8], params: KdfParams) -> Result<LessSafeKey, KeyFileError> {
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?,
    );
    let mut key = [0u8; 32];
    argon
        .hash_password_into(pin.0.as_bytes(), salt, &mut key)
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
        .map_err(|_| KeyFileError::Kdf("aead key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `key` under `pin`.
pub fn seal(key: &SigningKey, pin: &Pin, params: KdfParams) -> Result<Vec<u8>, KeyFileError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill(&mut salt).map_err(|_| KeyFileError::Random)?;
    rng.fill(&mut nonce).map_err(|_| KeyFileError::Random)?;
    let mut out = Vec::with_capacity(KEY_FILE_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&params.memory_kib.to_be_bytes());
    out.extend_from_slice(&params.iterations.to_be_bytes());
    out.extend_from_slice(&params.parallelism.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    debug_assert_eq!(out.len(), HEADER_BYTES);
    let mut sealed = key.to_bytes().to_vec();
    derive(pin, &salt, params)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..]),
            &mut sealed,
        )
        .map_err(|_| KeyFileError::Kdf("seal".into()))?;
    out.extend_from_slice(&sealed);
    debug_assert_eq!(out.len(), KEY_FILE_BYTES);
    Ok(out)
}

/// Decrypts a key file with `pin`.
pub fn open(file: &[u8], pin: &Pin) -> Result<SigningKey, KeyFileError> {
    if file.len() != KEY_FILE_BYTES {
        return Err(KeyFileError::Malformed("wrong length"));
    }
    let (header, sealed) = file.split_at(HEADER_BYTES);
    if &header[..8] != MAGIC {
        return Err(KeyFileError::Malformed("wrong magic"));
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let params = KdfParams {
        memory_kib: word(8),
        iterations: word(12),
        parallelism: word(16),
    };
    if params.memory_kib > KDF_MEMORY_KIB_MAX
        || params.iterations > KDF_ITERATIONS_MAX
        || params.parallelism > 16
    {
        return Err(KeyFileError::Malformed(
            "key derivation costs out of bounds",
        ));
    }
    let salt = &header[20..36];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&header[36..48]);
    let mut buffer = sealed.to_vec();
    let plain = derive(pin, salt, params)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut buffer,
        )
        .map_err(|_| KeyFileError::WrongPin)?;
    let seed: [u8; 32] = plain
        .try_into()
        .map_err(|_| KeyFileError::Malformed("seed length"))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn the_right_pin_opens_and_a_wrong_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pin = Pin::new("246810".into()).unwrap();
        let file = seal(&key, &pin, FAST).unwrap();
        assert_eq!(file.len(), KEY_FILE_BYTES);
        assert_eq!(open(&file, &pin).unwrap().to_bytes(), key.to_bytes());
        let wrong = Pin::new("246811".into()).unwrap();
        assert!(matches!(open(&file, &wrong), Err(KeyFileError::WrongPin)));
    }

    #[test]
    fn an_altered_file_does_not_open() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pin = Pin::new("246810".into()).unwrap();
        let file = seal(&key, &pin, FAST).unwrap();
        for i in [0, 9, 25, 40, 60, 95] {
            let mut altered = file.clone();
            altered[i] ^= 1;
            assert!(open(&altered, &pin).is_err(), "byte {i}");
        }
        assert!(matches!(
            open(&file[..50], &pin),
            Err(KeyFileError::Malformed(_))
        ));
    }

    #[test]
    fn pins_have_a_length() {
        assert!(matches!(
            Pin::new("12345".into()),
            Err(KeyFileError::PinLength)
        ));
        assert!(Pin::new("123456".into()).is_ok());
        assert!(Pin::new("x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Pin::new("123456".into()).unwrap()),
            "Pin(***)"
        );
    }
}
