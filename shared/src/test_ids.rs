//! The demo region's node identities, for the tests of the engine and the blob transfers.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crate::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};
use crate::identity::NodeIdentity;

pub(crate) fn region() -> RegionCode {
    RegionCode::new("42").unwrap()
}

pub(crate) fn rcoi() -> NodeIdentity {
    NodeIdentity {
        region: region(),
        org: OrgCode::Rcoi(region()),
        municipality: None,
    }
}

pub(crate) fn moyo(code: &str) -> NodeIdentity {
    NodeIdentity {
        region: region(),
        org: OrgCode::Municipality(MunicipalityCode::new(code).unwrap()),
        municipality: None,
    }
}

pub(crate) fn school(municipality: &str, code: &str) -> NodeIdentity {
    NodeIdentity {
        region: region(),
        org: OrgCode::parse(NodeRole::School, code).unwrap(),
        municipality: Some(MunicipalityCode::new(municipality).unwrap()),
    }
}
