//! Scenario files: what region to simulate and what goes wrong on its exam day.
//!
//! A scenario is TOML (documented with examples in `simulations/scenarios/README.md`). Loading
//! checks every field and names the one that is wrong; times of day are `"HH:MM"` local time.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The most schools a municipality may have in a scenario (school codes are the municipality's
/// code and a two-digit number).
pub const SCHOOLS_PER_MUNICIPALITY_MAX: u32 = 99;
/// The most municipalities (codes are the region's code and a two-digit number).
pub const MUNICIPALITIES_MAX: u32 = 99;
/// The most participants a scenario may hold.
pub const PARTICIPANTS_MAX: u32 = 1_000_000;

/// A scenario as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The region's two-digit code.
    #[serde(default = "default_region")]
    pub region: String,
    /// The exam, e.g. `is-2024-02-14`.
    #[serde(default = "default_exam")]
    pub exam: String,
    /// The region's offset from UTC: times of day in the file are local.
    #[serde(default = "default_utc_offset")]
    pub utc_offset_hours: i8,
    /// The seed used when `--seed` is not given.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub topology: Topology,
    pub participants: Participants,
    #[serde(default)]
    pub day: Day,
    pub links: Links,
    #[serde(default)]
    pub outages: Vec<Outage>,
    #[serde(default)]
    pub crashes: Vec<Crash>,
    #[serde(default)]
    pub adversaries: Vec<AdversarySpec>,
    /// Recordings of the answers; absent: none are made.
    #[serde(default)]
    pub audio: Option<Audio>,
    /// The exam materials (КИМ) package the РЦОИ names before the day; absent: none.
    #[serde(default)]
    pub materials: Option<Materials>,
}

/// The exam materials package (seed 002 §30): named in the region directory by the РЦОИ when
/// the run starts, fetched by every МОУО and school below the documents, as blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Materials {
    /// The package's size, bytes.
    pub bytes: u64,
}

/// The largest package a scenario may name: 1 GiB (a day's КИМ is a few MB of PDF).
pub const MATERIALS_BYTES_MAX: u64 = 1 << 30;

/// The recordings of answers (seed 002 §39): one per participant's attempt, taken in at the
/// school when the answer ends, and each room's stream for the day, taken in after its last
/// participant. Their bytes travel below the documents, school → МОУО → РЦОИ, as blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audio {
    /// The recordings' bit rate, kbit/s (64–128 in practice).
    pub kbit_s: u32,
    /// Whether rooms record a stream for the whole day (§39); default yes.
    #[serde(default = "yes")]
    pub room_streams: bool,
    /// Every school's `[node] audio_kbit_s`: the most it sends of recordings, kbit/s, so its
    /// thin link keeps room; absent: as fast as the link goes. (Hubs send as fast as theirs.)
    #[serde(default)]
    pub send_kbit_s: Option<u32>,
}

/// The bit rates a scenario's recordings may have, kbit/s: from a narrow-band voice codec to
/// uncompressed CD audio.
pub const AUDIO_KBIT_S: std::ops::RangeInclusive<u32> = 8..=1_411;

fn yes() -> bool {
    true
}

/// What a hostile node in the region tries. Each attempt is a sync frame carrying a change the
/// node made under its own key, with its own valid attestation, sent upstream: only the rights
/// of who may hold and write what stand in its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdversaryKind {
    /// A school writes into another school's roster (of its municipality): refused as a
    /// document not shared with it.
    ForeignWrite,
    /// A school writes `receipt/HASH = verified` into its own РЦОИ document, vouching for itself.
    ForgedReceipt,
    /// A МОУО hub rewrites a school's protocol it relays, and sends it on to the РЦОИ.
    HubForgery,
    /// A school sends again, on its current connection, the first sync frame with changes it
    /// ever sent (what an eavesdropper or an old backup holds): it must change nothing.
    Replay,
    /// A school opens more fragmented frames than a peer holds unfinished and never finishes
    /// them: the receiver closes the connection, and the school's traffic resumes when it
    /// reconnects.
    FragmentFlood,
    /// A school changes a participant's category in its roster on its own, to one with a lower
    /// pass mark, and enters a sheet scored by it that passes only by that category. Unlike the
    /// others, every change it makes is one the school may write: what stops it is that only the
    /// category of record (the РЦОИ's register) counts, so the РЦОИ refuses the sheet on receipt.
    CategoryChange,
    /// A school's organiser ends an attempt with a signed act, and the school still enters a
    /// sheet for that attempt (its last participant's attempt 1; the plan then has them
    /// absent): writes it may make, but an attempt an act ended is not scored, so the РЦОИ
    /// refuses the sheet on receipt.
    SheetAfterAct,
    /// A school's expert whom the head's commission order names for no room scores a
    /// participant: the expert is certified for the school, but scores only in the rooms the
    /// order names, so the РЦОИ refuses the sheet on receipt.
    ExpertOutsideRoom,
    /// A school scores a participant for an attempt their history does not give on the date
    /// (the one after their last, which no act opened): the room's own expert, the category of
    /// record, but not an attempt of the date, so the РЦОИ refuses the sheet on receipt.
    WrongAttempt,
}

impl std::fmt::Display for AdversaryKind {
    /// The kind as a scenario names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ForeignWrite => "foreign-write",
            Self::ForgedReceipt => "forged-receipt",
            Self::HubForgery => "hub-forgery",
            Self::Replay => "replay",
            Self::FragmentFlood => "fragment-flood",
            Self::CategoryChange => "category-change",
            Self::SheetAfterAct => "sheet-after-act",
            Self::ExpertOutsideRoom => "expert-outside-room",
            Self::WrongAttempt => "wrong-attempt",
        })
    }
}

/// Hostile nodes: `count` of them (schools, or МОУО hubs for `hub-forgery`) try `kind` at `at`,
/// and again every `every_minutes` if given, until the day ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarySpec {
    pub kind: AdversaryKind,
    #[serde(default = "one")]
    pub count: u32,
    pub at: String,
    #[serde(default)]
    pub every_minutes: Option<u32>,
}

fn one() -> u32 {
    1
}

fn default_region() -> String {
    "42".into()
}
fn default_exam() -> String {
    "is-2024-02-14".into()
}
fn default_utc_offset() -> i8 {
    7
}
fn default_seed() -> u64 {
    1
}

/// Municipalities and their schools: counts spread evenly, codes numbered from 01.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub municipalities: u32,
    /// Schools in the whole region, spread evenly over the municipalities.
    pub schools: u32,
}

/// Who sits the exam and what happens to their sheets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participants {
    /// Participants in the whole region, spread evenly over the schools.
    pub total: u32,
    /// Participants per room: a school has as many rooms as it needs.
    pub per_room: u32,
    /// Share with limited health capabilities (ОВЗ): +30 minutes, their own criteria.
    #[serde(default)]
    pub ovz_share: f64,
    /// Share absent («Н»).
    #[serde(default)]
    pub absent_share: f64,
    /// Share whose recording is bad on listening back (seed 002 §45): the organiser writes an
    /// act, and the participant sits again the same day as attempt 2, which is scored.
    #[serde(default)]
    pub retake_share: f64,
    /// Share of sheets corrected later by a new signed sheet that supersedes the first.
    #[serde(default)]
    pub correction_share: f64,
    /// Share of participants scored twice, differently, by two experts with neither sheet
    /// superseding the other: a conflict the РЦОИ must surface.
    #[serde(default)]
    pub conflict_share: f64,
    /// Share of participants for whom the school also stores a sheet that must not count:
    /// alternately one with a damaged signature and one signed by an expert the region
    /// revoked before the day. The РЦОИ must receipt each invalid, with its reason.
    #[serde(default)]
    pub invalid_share: f64,
}

/// The exam day's timeline. Every field is optional: what a `[day]` table leaves out is the
/// default's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Day {
    /// When each school imports its roster (participants, rooms, assignments).
    pub roster_at: String,
    /// When each room calls its first participant.
    pub first_slot: String,
    /// A participant's time in the room: drawn from this range, in minutes.
    pub slot_minutes: [u32; 2],
    /// Extra minutes for ОВЗ participants.
    pub ovz_extra_minutes: u32,
    /// The expert signs the sheet this long after the participant leaves (range, minutes).
    pub scoring_minutes: [u32; 2],
    /// A correction comes this long after the sheet it corrects (range, minutes).
    pub correction_minutes: [u32; 2],
    /// How long after the last scripted event the region may take to converge before the run
    /// is declared not converged, in minutes.
    pub settle_minutes: u32,
}

impl Default for Day {
    fn default() -> Self {
        Day {
            roster_at: "07:30".into(),
            first_slot: "09:00".into(),
            slot_minutes: [15, 16],
            ovz_extra_minutes: 30,
            scoring_minutes: [0, 3],
            correction_minutes: [10, 90],
            settle_minutes: 240,
        }
    }
}

/// Link profiles: schools to their hub (and to the РЦОИ when they fall back), hubs to the РЦОИ.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    pub school: LinkProfile,
    pub hub: LinkProfile,
}

/// One link's behaviour. Loss, duplication and reordering act on packets: QUIC retransmits lost
/// packets, drops duplicates and reorders within its streams, so the engine sees the effect as
/// delay and extra bytes on the wire, never as lost or reordered frames.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkProfile {
    /// One-way latency.
    pub latency_ms: u32,
    /// Bandwidth each way.
    pub bandwidth_kbit_s: u32,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub duplication: f64,
    #[serde(default)]
    pub reordering: f64,
}

/// Which nodes a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A share (or count) of the schools, chosen by the seed.
    Schools,
    /// A count of МОУО hubs, chosen by the seed.
    Moyo,
    /// The РЦОИ hub.
    Rcoi,
}

/// A window in which nodes are unreachable. Schools lose their network and keep working (staff
/// go on entering data); hubs and the РЦОИ are down (the process stops) and come back from
/// what they had persisted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub what: Target,
    /// For schools: the share of them.
    #[serde(default)]
    pub share: Option<f64>,
    /// For schools or hubs: how many.
    #[serde(default)]
    pub count: Option<u32>,
    pub from: String,
    pub to: String,
}

/// Nodes that crash at `at` and restart from their persisted state `down_minutes` later.
/// Nothing can be entered at a crashed school until it restarts.
///
/// With `in_commit = true` the crash strikes at the store's durability point instead: the node
/// dies while committing its first batch from `at` on (at a school, the first holding a score
/// sheet staff entered), so that batch is lost whole, as `kill -9` before `commit` returns loses
/// it in production: nothing of it was sent, nor acknowledged to the staff, who enter it again
/// after the restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub what: Target,
    #[serde(default)]
    pub share: Option<f64>,
    #[serde(default)]
    pub count: Option<u32>,
    pub at: String,
    pub down_minutes: u32,
    #[serde(default)]
    pub in_commit: bool,
}

/// A scenario that cannot run, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The rehearsal's CA or people's certificates could not be made.
    #[error("the rehearsal's certificates: {0}")]
    Certificates(String),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Minutes since local midnight of `"HH:MM"`.
pub fn minutes_of_day(field: &str, text: &str) -> Result<u32, ScenarioError> {
    let bad = || invalid(field, format!("{text:?} is not a time of day HH:MM"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn share(field: &str, value: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{value} is not a share between 0 and 1"),
        ))
    }
}

fn range(field: &str, r: [u32; 2]) -> Result<(), ScenarioError> {
    if r[0] <= r[1] {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{r:?}: the first bound exceeds the second"),
        ))
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        scenario.check()?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), ScenarioError> {
        giasync_shared::codes::RegionCode::new(&self.region)
            .map_err(|e| invalid("region", e.to_string()))?;
        self.exam
            .parse::<giasync_shared::exam::ExamId>()
            .map_err(|e| invalid("exam", e.to_string()))?;
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return Err(invalid("utc_offset_hours", "must be between -12 and 14"));
        }
        let t = &self.topology;
        if !(1..=MUNICIPALITIES_MAX).contains(&t.municipalities) {
            return Err(invalid(
                "topology.municipalities",
                format!("must be 1 to {MUNICIPALITIES_MAX}"),
            ));
        }
        if t.schools < t.municipalities
            || t.schools > t.municipalities * SCHOOLS_PER_MUNICIPALITY_MAX
        {
            return Err(invalid(
                "topology.schools",
                format!(
                    "must be at least one per municipality and at most \
                     {SCHOOLS_PER_MUNICIPALITY_MAX} per municipality"
                ),
            ));
        }
        let p = &self.participants;
        if p.total < t.schools || p.total > PARTICIPANTS_MAX {
            return Err(invalid(
                "participants.total",
                format!("must be at least one per school and at most {PARTICIPANTS_MAX}"),
            ));
        }
        if p.per_room == 0 {
            return Err(invalid("participants.per_room", "must be at least 1"));
        }
        share("participants.ovz_share", p.ovz_share)?;
        share("participants.absent_share", p.absent_share)?;
        share("participants.retake_share", p.retake_share)?;
        share("participants.correction_share", p.correction_share)?;
        share("participants.conflict_share", p.conflict_share)?;
        share("participants.invalid_share", p.invalid_share)?;
        if p.correction_share + p.conflict_share > 1.0 {
            return Err(invalid(
                "participants",
                "correction_share and conflict_share together exceed 1",
            ));
        }
        if let Some(a) = &self.audio {
            if !AUDIO_KBIT_S.contains(&a.kbit_s) {
                return Err(invalid(
                    "audio.kbit_s",
                    format!(
                        "{} is not a bit rate recordings have: {} to {}",
                        a.kbit_s,
                        AUDIO_KBIT_S.start(),
                        AUDIO_KBIT_S.end()
                    ),
                ));
            }
            let least = giasync_shared::config::AUDIO_KBIT_S_MIN;
            if a.send_kbit_s.is_some_and(|k| k < least) {
                return Err(invalid(
                    "audio.send_kbit_s",
                    format!("at least {least}, as a node's [node] audio_kbit_s"),
                ));
            }
        }
        if let Some(m) = &self.materials
            && !(1..=MATERIALS_BYTES_MAX).contains(&m.bytes)
        {
            return Err(invalid(
                "materials.bytes",
                format!("1 to {MATERIALS_BYTES_MAX} bytes"),
            ));
        }
        let d = &self.day;
        minutes_of_day("day.roster_at", &d.roster_at)?;
        minutes_of_day("day.first_slot", &d.first_slot)?;
        range("day.slot_minutes", d.slot_minutes)?;
        if d.slot_minutes[0] == 0 {
            return Err(invalid(
                "day.slot_minutes",
                "a slot lasts at least a minute",
            ));
        }
        range("day.scoring_minutes", d.scoring_minutes)?;
        range("day.correction_minutes", d.correction_minutes)?;
        for (name, l) in [
            ("links.school", &self.links.school),
            ("links.hub", &self.links.hub),
        ] {
            if l.bandwidth_kbit_s == 0 {
                return Err(invalid(
                    format!("{name}.bandwidth_kbit_s"),
                    "must be above 0",
                ));
            }
            share(&format!("{name}.loss"), l.loss)?;
            if l.loss > 0.5 {
                return Err(invalid(
                    format!("{name}.loss"),
                    "above 0.5 no connection would hold",
                ));
            }
            share(&format!("{name}.duplication"), l.duplication)?;
            share(&format!("{name}.reordering"), l.reordering)?;
        }
        for (i, o) in self.outages.iter().enumerate() {
            let field = format!("outages[{i}]");
            check_target(&field, o.what, o.share, o.count)?;
            let from = minutes_of_day(&format!("{field}.from"), &o.from)?;
            let to = minutes_of_day(&format!("{field}.to"), &o.to)?;
            if to <= from {
                return Err(invalid(format!("{field}.to"), "must be after `from`"));
            }
        }
        for (i, c) in self.crashes.iter().enumerate() {
            let field = format!("crashes[{i}]");
            check_target(&field, c.what, c.share, c.count)?;
            minutes_of_day(&format!("{field}.at"), &c.at)?;
        }
        for (i, a) in self.adversaries.iter().enumerate() {
            let field = format!("adversaries[{i}]");
            minutes_of_day(&format!("{field}.at"), &a.at)?;
            if a.count == 0 {
                return Err(invalid(format!("{field}.count"), "must be at least 1"));
            }
            if a.every_minutes == Some(0) {
                return Err(invalid(
                    format!("{field}.every_minutes"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

fn check_target(
    field: &str,
    what: Target,
    share_of: Option<f64>,
    count: Option<u32>,
) -> Result<(), ScenarioError> {
    match (what, share_of, count) {
        (Target::Schools, Some(s), None) => share(&format!("{field}.share"), s),
        (Target::Schools | Target::Moyo, None, Some(_)) => Ok(()),
        (Target::Rcoi, None, None) => Ok(()),
        (Target::Schools, _, _) => Err(invalid(field, "schools take either `share` or `count`")),
        (Target::Moyo, _, _) => Err(invalid(field, "МОУО hubs take `count`")),
        (Target::Rcoi, _, _) => Err(invalid(field, "the РЦОИ takes neither `share` nor `count`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "t"
        [topology]
        municipalities = 2
        schools = 4
        [participants]
        total = 40
        per_room = 10
        [links.school]
        latency_ms = 30
        bandwidth_kbit_s = 1000
        [links.hub]
        latency_ms = 10
        bandwidth_kbit_s = 10000
    "#;

    fn field_of(text: &str) -> String {
        match Scenario::parse(text, "t.toml") {
            Err(ScenarioError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    /// Each kind of adversary is printed by the name a scenario gives it, that name reads
    /// back as the same kind, and the JSON report writes the same name.
    #[test]
    fn an_adversary_kind_prints_as_a_scenario_names_it() {
        #[derive(Deserialize)]
        struct One {
            kind: AdversaryKind,
        }
        let names = [
            "foreign-write",
            "forged-receipt",
            "hub-forgery",
            "replay",
            "fragment-flood",
            "category-change",
            "sheet-after-act",
            "expert-outside-room",
            "wrong-attempt",
        ];
        for name in names {
            let one: One = toml::from_str(&format!("kind = \"{name}\"")).unwrap();
            assert_eq!(one.kind.to_string(), name);
            assert_eq!(serde_json::to_value(one.kind).unwrap(), name);
        }
    }

    /// A `[day]` table that gives some fields takes the defaults for the rest.
    #[test]
    fn a_day_table_with_some_fields_takes_the_defaults_for_the_others() {
        let text = format!("{MINIMAL}\n        [day]\n        first_slot = \"10:00\"\n");
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert_eq!(s.day.first_slot, "10:00");
        assert_eq!(s.day.roster_at, "07:30");
        assert_eq!(s.day.slot_minutes, [15, 16]);
        assert_eq!(s.day.settle_minutes, 240);
    }

    #[test]
    fn a_minimal_scenario_loads_with_defaults() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.day.first_slot, "09:00");
        assert_eq!(s.region, "42");
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            field_of(&MINIMAL.replace("schools = 4", "schools = 1")),
            "topology.schools"
        );
        assert_eq!(
            field_of(&MINIMAL.replace(
                "[links.hub]\n        latency_ms = 10",
                "[links.hub]\n        loss = 1.5\n        latency_ms = 10"
            )),
            "links.hub.loss"
        );
        let outage =
            format!("{MINIMAL}\n[[outages]]\nwhat = \"rcoi\"\nfrom = \"14:00\"\nto = \"13:00\"\n");
        assert_eq!(field_of(&outage), "outages[0].to");
        let crash = format!(
            "{MINIMAL}\n[[crashes]]\nwhat = \"moyo\"\nshare = 0.5\nat = \"10:00\"\ndown_minutes = 5\n"
        );
        assert_eq!(field_of(&crash), "crashes[0]");
        let adversary = |fields: &str| format!("{MINIMAL}\n[[adversaries]]\n{fields}\n");
        assert_eq!(
            field_of(&adversary("kind = \"foreign-write\"\nat = \"25:00\"")),
            "adversaries[0].at"
        );
        assert_eq!(
            field_of(&adversary(
                "kind = \"foreign-write\"\nat = \"10:00\"\ncount = 0"
            )),
            "adversaries[0].count"
        );
        assert!(matches!(
            Scenario::parse(&adversary("kind = \"burglary\"\nat = \"10:00\""), "t.toml"),
            Err(ScenarioError::Parse { .. })
        ));
        let parsed = Scenario::parse(
            &adversary("kind = \"hub-forgery\"\nat = \"10:00\"\nevery_minutes = 30"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(parsed.adversaries[0].kind, AdversaryKind::HubForgery);
        assert_eq!(parsed.adversaries[0].count, 1);
        assert!(matches!(
            Scenario::parse(&format!("{MINIMAL}\nsurprise = 1\n"), "t.toml"),
            Err(ScenarioError::Parse { .. })
        ));
    }

    #[test]
    fn times_of_day_are_checked() {
        assert_eq!(minutes_of_day("f", "09:05").unwrap(), 545);
        assert!(minutes_of_day("f", "9:05").is_err());
        assert!(minutes_of_day("f", "24:00").is_err());
    }
}
