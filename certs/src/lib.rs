//! The region's PKI: the CA (`pki`), the identities certificates carry (`identity`), people's
//! PIN-encrypted signing keys (`keyfile`), certificate inspection (`show`), the pages' HTTPS
//! certificates (`web`) and the demo region (`demo`). The `giasync-certs` binary is the operators' front end.

pub mod demo;
pub mod enrol;
pub mod enrol_person;
pub mod identity;
pub mod keyfile;
pub mod pki;
pub mod show;
pub mod verify;
pub mod web;

pub use identity::{Identity, IdentityError, NodeIdentity, PersonIdentity};
