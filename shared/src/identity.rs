//! Who a certificate speaks for: node and person identities, written in a certificate as one URI
//! subject alternative name.
//!
//! | certificate | URI SAN |
//! |---|---|
//! | РЦОИ node | `giasync://42/node/rcoi/42` |
//! | МОУО node | `giasync://42/node/municipality/4201` |
//! | school node | `giasync://42/node/school/420101?municipality=4201` |
//! | person | `giasync://42/person/expert/exp-1?org=school:420101` |
//!
//! The first path segment after the host is the kind; the host is the region code. A school
//! names its municipality; a person names the organisation they work for (`rcoi:42`,
//! `municipality:4201` or `school:420101`). Exactly one `giasync://` URI may appear.

use std::fmt;

use crate::codes::{MunicipalityCode, NodeRole, OrgCode, PersonId, PersonRole, RegionCode};
use crate::error::DomainError;

pub const SCHEME: &str = "giasync://";

/// A node's certified identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeIdentity {
    pub region: RegionCode,
    pub org: OrgCode,
    /// The municipality a school belongs to; `None` for hubs.
    pub municipality: Option<MunicipalityCode>,
}

/// A person's certified identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonIdentity {
    pub region: RegionCode,
    pub role: PersonRole,
    pub id: PersonId,
    pub org: OrgCode,
}

/// Either identity, as read from a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Node(NodeIdentity),
    Person(PersonIdentity),
}

/// A certificate that does not carry a usable giasync identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    NotACertificate(String),
    /// No `giasync://` URI subject alternative name.
    #[error("the certificate carries no giasync identity")]
    Missing,
    /// More than one `giasync://` URI.
    #[error("the certificate carries more than one giasync identity")]
    Ambiguous,
    /// The URI is not of the documented form.
    #[error("malformed giasync identity {uri:?}: {reason}")]
    Malformed { uri: String, reason: String },
    /// A code or id inside the URI is invalid.
    #[error("giasync identity {uri:?}: {error}")]
    Field { uri: String, error: DomainError },
    /// A node identity was expected but this is a person's, or the reverse.
    #[error("expected a {expected} certificate, got {got}")]
    WrongKind { expected: &'static str, got: String },
}

impl NodeIdentity {
    /// Builds a node identity; a school must name its municipality and a hub must not.
    pub fn new(
        region: RegionCode,
        org: OrgCode,
        municipality: Option<MunicipalityCode>,
    ) -> Result<Self, IdentityError> {
        let identity = NodeIdentity {
            region,
            org,
            municipality,
        };
        let uri = identity.to_uri();
        match (org, municipality) {
            (OrgCode::School(_), None) => Err(IdentityError::Malformed {
                uri,
                reason: "a school must name its municipality".into(),
            }),
            (OrgCode::Rcoi(code), _) if code != region => Err(IdentityError::Malformed {
                uri,
                reason: "the РЦОИ's code is its region's code".into(),
            }),
            (OrgCode::Rcoi(_) | OrgCode::Municipality(_), Some(_)) => {
                Err(IdentityError::Malformed {
                    uri,
                    reason: "only a school names a municipality".into(),
                })
            }
            _ => Ok(identity),
        }
    }

    #[must_use]
    pub fn role(&self) -> NodeRole {
        self.org.role()
    }

    /// The URI SAN that carries this identity.
    #[must_use]
    pub fn to_uri(&self) -> String {
        let (role, code) = org_parts(self.org);
        match self.municipality {
            Some(m) => format!(
                "{SCHEME}{}/node/{role}/{code}?municipality={m}",
                self.region
            ),
            None => format!("{SCHEME}{}/node/{role}/{code}", self.region),
        }
    }
}

impl fmt::Display for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (role, code) = org_parts(self.org);
        write!(f, "{role} {code}")?;
        if let Some(m) = self.municipality {
            write!(f, " (municipality {m})")?;
        }
        Ok(())
    }
}

impl PersonIdentity {
    #[must_use]
    pub fn to_uri(&self) -> String {
        let (org_role, org_code) = org_parts(self.org);
        format!(
            "{SCHEME}{}/person/{}/{}?org={org_role}:{org_code}",
            self.region,
            self.role.id(),
            self.id
        )
    }
}

impl fmt::Display for PersonIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (org_role, org_code) = org_parts(self.org);
        write!(f, "{} {} of {org_role} {org_code}", self.role.id(), self.id)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(n) => write!(f, "node {n}"),
            Identity::Person(p) => write!(f, "person {p}"),
        }
    }
}

fn org_parts(org: OrgCode) -> (&'static str, String) {
    match org {
        OrgCode::Rcoi(c) => (NodeRole::Rcoi.id(), c.to_string()),
        OrgCode::Municipality(c) => (NodeRole::Municipality.id(), c.to_string()),
        OrgCode::School(c) => (NodeRole::School.id(), c.to_string()),
    }
}

impl Identity {
    /// Parses a `giasync://` URI.
    pub fn parse_uri(uri: &str) -> Result<Self, IdentityError> {
        let malformed = |reason: &str| IdentityError::Malformed {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let field = |error| IdentityError::Field {
            uri: uri.to_owned(),
            error,
        };
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| malformed("not a giasync:// URI"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let query_value = |key: &str| -> Result<Option<&str>, IdentityError> {
            match query {
                None => Ok(None),
                Some(q) => match q.split_once('=') {
                    Some((k, v)) if k == key && !v.contains(['&', '=']) => Ok(Some(v)),
                    _ => Err(malformed(&format!("the only query parameter is {key}"))),
                },
            }
        };
        let parts: Vec<&str> = path.split('/').collect();
        let [region, kind, role, code] = parts[..] else {
            return Err(malformed("expected REGION/KIND/ROLE/CODE"));
        };
        let region = RegionCode::new(region).map_err(field)?;
        match kind {
            "node" => {
                let role: NodeRole = role.parse().map_err(field)?;
                let org = OrgCode::parse(role, code).map_err(field)?;
                let municipality = query_value("municipality")?
                    .map(MunicipalityCode::new)
                    .transpose()
                    .map_err(field)?;
                Ok(Identity::Node(NodeIdentity::new(
                    region,
                    org,
                    municipality,
                )?))
            }
            "person" => {
                let role: PersonRole = role.parse().map_err(field)?;
                let id = PersonId::new(code).map_err(field)?;
                let org_text =
                    query_value("org")?.ok_or_else(|| malformed("a person names their org"))?;
                let (org_role, org_code) = org_text
                    .split_once(':')
                    .ok_or_else(|| malformed("org must be ROLE:CODE"))?;
                let org_role: NodeRole = org_role.parse().map_err(field)?;
                let org = OrgCode::parse(org_role, org_code).map_err(field)?;
                Ok(Identity::Person(PersonIdentity {
                    region,
                    role,
                    id,
                    org,
                }))
            }
            _ => Err(malformed("kind must be node or person")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identities_round_trip() {
        let region = RegionCode::new("42").unwrap();
        for (org, municipality) in [
            (OrgCode::Rcoi(region), None),
            (
                OrgCode::Municipality(MunicipalityCode::new("4201").unwrap()),
                None,
            ),
            (
                OrgCode::parse(NodeRole::School, "420101").unwrap(),
                Some(MunicipalityCode::new("4201").unwrap()),
            ),
        ] {
            let id = NodeIdentity::new(region, org, municipality).unwrap();
            assert_eq!(
                Identity::parse_uri(&id.to_uri()).unwrap(),
                Identity::Node(id)
            );
        }
        assert_eq!(
            NodeIdentity::new(
                region,
                OrgCode::parse(NodeRole::School, "420101").unwrap(),
                Some(MunicipalityCode::new("4201").unwrap())
            )
            .unwrap()
            .to_uri(),
            "giasync://42/node/school/420101?municipality=4201"
        );
    }

    #[test]
    fn inconsistent_node_identities_are_refused() {
        let region = RegionCode::new("42").unwrap();
        let school = OrgCode::parse(NodeRole::School, "420101").unwrap();
        assert!(NodeIdentity::new(region, school, None).is_err());
        assert!(
            NodeIdentity::new(region, OrgCode::Rcoi(RegionCode::new("43").unwrap()), None).is_err()
        );
        let muni = OrgCode::Municipality(MunicipalityCode::new("4201").unwrap());
        assert!(
            NodeIdentity::new(region, muni, Some(MunicipalityCode::new("4201").unwrap())).is_err()
        );
    }

    #[test]
    fn person_identities_round_trip() {
        let person = PersonIdentity {
            region: RegionCode::new("42").unwrap(),
            role: PersonRole::Expert,
            id: PersonId::new("exp-1").unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        };
        assert_eq!(
            person.to_uri(),
            "giasync://42/person/expert/exp-1?org=school:420101"
        );
        assert_eq!(
            Identity::parse_uri(&person.to_uri()).unwrap(),
            Identity::Person(person)
        );
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "https://42/node/rcoi/42",
            "giasync://42/node/rcoi",
            "giasync://4/node/rcoi/4",
            "giasync://42/node/teacher/42",
            "giasync://42/thing/rcoi/42",
            "giasync://42/node/school/420101?x=1",
            "giasync://42/node/school/420101?municipality=4201&x=1",
            "giasync://42/person/expert/exp-1",
            "giasync://42/person/expert/exp-1?org=420101",
        ] {
            assert!(Identity::parse_uri(bad).is_err(), "{bad}");
        }
    }
}
