//! Faults in the simulator itself, to show that each invariant of the report can fail
//! (`giasync-sim run --sabotage NAME`, hidden from `--help`: it exists for the tests). None of
//! them is a way exam day can go; each breaks what one invariant watches (others may fail with
//! it: a tampered replica also stops converging), and the test asserts that the run exits
//! non-zero naming that invariant.

use std::str::FromStr;

/// What to break.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sabotage {
    #[default]
    None,
    /// After the day, a change by the МОУО is written into its stored copy of a school's
    /// protocol and the МОУО restarts from it: a change nobody may make, held.
    TamperedStore,
    /// The first school stops making its entries after its tenth, saying nothing.
    StalledSchool,
    /// Corrections are signed without naming the sheet they replace: each surfaces as a
    /// conflict though none was entered.
    CorrectionAsConflict,
    /// After the day, the first school's node is given another school's roster.
    ForeignRoster,
    /// After the day, the РЦОИ receipts every sheet `verified`, the invalid ones too.
    InvalidReceiptedVerified,
    /// A second expert's conflicting sheet is signed as a correction of the first: the
    /// conflict entered never surfaces.
    ConflictAsCorrection,
    /// The first school's sixth entry fails with an error.
    BrokenEntry,
    /// Entries are acknowledged to the staff before their batch is durable: a sheet lost in an
    /// in-commit crash is never entered again.
    AckBeforeDurable,
    /// The РЦОИ approves whatever category a school scores by: before receipting a protocol it
    /// sets each new sheet's participant's category of record to the sheet's.
    ApproveEveryRequest,
    /// Organisers sign acts with a key the region never certified, so no act verifies.
    UncertifiedOrganisers,
    /// Heads of school sign commission orders with a key the region never certified, so no
    /// order verifies and every expert may score anywhere.
    UncertifiedHeads,
    /// The first school's blob store loses its first recording: asked for it, the school says
    /// it does not hold it, so it never reaches the РЦОИ.
    LostRecording,
    /// The first school serves its first recording's pieces spoiled: each is refused, and the
    /// recording never reaches the РЦОИ.
    SpoiledPieces,
    /// Attempts follow the date, as before they followed history: the РЦОИ's register of an
    /// additional date gives no first attempt, and schools score everyone by the date's old
    /// number (2 in March, 3 in April).
    AttemptsByDate,
    /// The РЦОИ names the materials package but never holds it: no school ever gets it.
    MaterialsWithheld,
}

impl FromStr for Sabotage {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "none" => Sabotage::None,
            "tampered-store" => Sabotage::TamperedStore,
            "stalled-school" => Sabotage::StalledSchool,
            "correction-as-conflict" => Sabotage::CorrectionAsConflict,
            "foreign-roster" => Sabotage::ForeignRoster,
            "invalid-receipted-verified" => Sabotage::InvalidReceiptedVerified,
            "conflict-as-correction" => Sabotage::ConflictAsCorrection,
            "broken-entry" => Sabotage::BrokenEntry,
            "ack-before-durable" => Sabotage::AckBeforeDurable,
            "approve-every-request" => Sabotage::ApproveEveryRequest,
            "uncertified-organisers" => Sabotage::UncertifiedOrganisers,
            "uncertified-heads" => Sabotage::UncertifiedHeads,
            "lost-recording" => Sabotage::LostRecording,
            "spoiled-pieces" => Sabotage::SpoiledPieces,
            "attempts-by-date" => Sabotage::AttemptsByDate,
            "materials-withheld" => Sabotage::MaterialsWithheld,
            other => {
                return Err(format!(
                    "unknown sabotage {other:?}: none, tampered-store, stalled-school, \
                     correction-as-conflict, foreign-roster, invalid-receipted-verified, \
                     conflict-as-correction, broken-entry, ack-before-durable, approve-every-request, uncertified-organisers, \
                     uncertified-heads, lost-recording, spoiled-pieces, attempts-by-date, materials-withheld"
                ));
            }
        })
    }
}
