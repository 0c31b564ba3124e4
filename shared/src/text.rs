//! Small validated strings stored inline, so ids and codes are `Copy` and cost no allocation on
//! the hot paths (decoding and verifying score records).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{DomainError, Field};

/// UTF-8 text of at most `N` bytes, stored inline.
#[derive(Clone, Copy)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    const CAPACITY_FITS_U8: () = assert!(N <= u8::MAX as usize);

    /// Copies `text` in; `None` when it is longer than `N` bytes.
    #[must_use]
    pub fn new(text: &str) -> Option<Self> {
        let () = Self::CAPACITY_FITS_U8;
        let len = text.len();
        if len > N {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..len].copy_from_slice(text.as_bytes());
        Some(Self {
            len: u8::try_from(len).ok()?,
            bytes,
        })
    }

    /// The bytes of the text: equality, order and hashing use them directly, without
    /// re-validating UTF-8 (these ids are compared many times per score sheet).
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` and never changed, so they are valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> PartialEq for InlineStr<N> {
    fn eq(&self, other: &Self) -> bool {
        // Bytes past `len` are always zero, so whole arrays compare exactly (and without a call
        // to memcmp for a handful of bytes).
        self.len == other.len && self.bytes == other.bytes
    }
}
impl<const N: usize> Eq for InlineStr<N> {}
impl<const N: usize> Hash for InlineStr<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.bytes.hash(state);
    }
}
impl<const N: usize> PartialOrd for InlineStr<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<const N: usize> Ord for InlineStr<N> {
    /// Byte-wise lexicographic order: the order of the canonical record encoding.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}
impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks the shape shared by all ids: non-empty, at most `max_bytes` long, and every character
/// accepted by `allowed`. The error names the field, the value and what is wrong.
pub(crate) fn check_token(
    field: Field,
    value: &str,
    max_bytes: usize,
    allowed: impl Fn(char) -> bool,
    allowed_description: &'static str,
) -> Result<(), DomainError> {
    let invalid = |reason: &'static str| DomainError::Invalid {
        field,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("is empty"));
    }
    if value.len() > max_bytes {
        return Err(invalid("is too long"));
    }
    if !value.chars().all(allowed) {
        return Err(invalid(allowed_description));
    }
    Ok(())
}

/// Declares a `Copy` id newtype over [`InlineStr`] with a validating constructor, `FromStr`,
/// `Display` and serde support through its string form.
macro_rules! inline_id {
    ($(#[$meta:meta])* $name:ident, $capacity:expr, $field:expr, $validate:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::text::InlineStr<{ $capacity }>);

        impl $name {
            /// The longest value, in bytes.
            pub const BYTES_MAX: usize = $capacity;

            /// Validates `value`; the error names the field and the value.
            pub fn new(value: &str) -> Result<Self, $crate::error::DomainError> {
                let validate: fn(&str) -> Result<(), $crate::error::DomainError> = $validate;
                validate(value)?;
                $crate::text::InlineStr::new(value).map($name).ok_or_else(|| {
                    $crate::error::DomainError::Invalid {
                        field: $field,
                        value: value.to_owned(),
                        reason: "is too long",
                    }
                })
            }

            #[must_use]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::DomainError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use inline_id;

/// Serde through a type's text form: `Display` to write, `FromStr` (which validates) to read.
macro_rules! serde_via_text {
    ($name:ty) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_str_round_trips_and_orders_bytewise() {
        let a = InlineStr::<8>::new("Ч1").unwrap();
        let b = InlineStr::<8>::new("Ч10").unwrap();
        let c = InlineStr::<8>::new("П1").unwrap();
        assert_eq!(a.as_str(), "Ч1");
        assert!(a < b);
        // "П" (U+041F) sorts before "Ч" (U+0427) byte-wise as in code points.
        assert!(c < a);
        assert!(InlineStr::<2>::new("abc").is_none());
    }
}
