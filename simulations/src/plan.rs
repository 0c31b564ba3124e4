//! From a scenario and a seed to a concrete plan: the region's nodes, each school's participants,
//! rooms and experts, the timeline of every data entry, and the faults with their times.

use giasync_shared::calendar::UtcOffset;
use giasync_shared::codes::{
    MunicipalityCode, OrgCode, ParticipantId, PersonId, RegionCode, RoomCode, SchoolCode,
};
use giasync_shared::exam::ExamId;
use giasync_shared::identity::NodeIdentity;
use giasync_shared::participant::Category;

use crate::rng::Rng;
use crate::scenario::{
    AdversaryKind, LinkProfile, Scenario, ScenarioError, Target, minutes_of_day,
};

pub const MINUTE_MS: i64 = 60_000;
/// Nodes start this long before the first scripted event.
pub const NODES_START_BEFORE_MS: i64 = 30 * MINUTE_MS;

/// The ОВЗ categories participants with limited health capabilities are drawn from.
const OVZ_CATEGORIES: [Category; 9] = [
    Category::Deaf,
    Category::HardOfHearing,
    Category::SevereSpeech,
    Category::BlindBraille,
    Category::BlindNoBraille,
    Category::VisuallyImpaired,
    Category::Musculoskeletal,
    Category::Autism,
    Category::DelayedDevelopment,
];

/// What a node is in the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rcoi,
    Moyo,
    School,
}

/// One node of the region. Node 0 is the РЦОИ, then the МОУО hubs, then the schools.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub identity: NodeIdentity,
    pub kind: Kind,
    /// Nodes it dials, in order of preference (a school: its МОУО, then the РЦОИ).
    pub upstreams: Vec<usize>,
    /// The profile of its links to its upstreams.
    pub link: LinkProfile,
}

#[derive(Debug, Clone)]
pub struct ParticipantPlan {
    pub id: ParticipantId,
    pub category: Category,
    pub room: usize,
    /// Sits again the same day after an act for a bad recording: scored as the attempt after
    /// the first.
    pub retake: bool,
    /// The participant's first attempt on the date: 1 on the main date; on an additional date
    /// one more than the attempts their drawn history used ([`history`]).
    pub first_attempt: u8,
    /// On an additional date, why §70 admits them, as the register says it.
    pub admitted: Option<String>,
}

impl ParticipantPlan {
    /// The attempt the participant's sheets are for.
    #[must_use]
    pub fn attempt(&self) -> u8 {
        self.first_attempt + u8::from(self.retake)
    }
}

/// What a participant brings to an additional date, drawn (the simulator runs one date; the
/// year's earlier dates are this history): the attempts they used before and why seed 002 §70
/// admits them. The shares are a plausible mix, not figures from a region. `None` on the main
/// date, where the register alone admits and every first attempt is 1.
fn history(rng: &mut Rng, exam: ExamId) -> Option<(u8, String)> {
    use giasync_shared::act::EarlyReason;
    use giasync_shared::retake::Admission;
    let date = exam.date();
    let [main, march, april] =
        giasync_shared::calendar::is_dates(date.year() + i32::from(date.month() >= 9))?;
    let document = "справка медицинской организации".to_owned();
    let roll = rng.unit();
    let (used, admission) = if date == march {
        match roll {
            r if r < 0.55 => (1, Admission::Failed { date: main }),
            // A same-day retake after a bad recording, failed too.
            r if r < 0.70 => (2, Admission::Failed { date: main }),
            r if r < 0.85 => (
                0,
                Admission::AbsentWithReason {
                    date: main,
                    document,
                },
            ),
            _ => (
                1,
                Admission::FinishedEarly {
                    date: main,
                    reason: EarlyReason::Health,
                },
            ),
        }
    } else if date == april {
        match roll {
            // Failed in February and in March.
            r if r < 0.45 => (2, Admission::Failed { date: march }),
            // Absent with a reason in February, failed in March.
            r if r < 0.60 => (1, Admission::Failed { date: march }),
            // Failed in February, absent with a reason in March.
            r if r < 0.75 => (
                1,
                Admission::AbsentWithReason {
                    date: march,
                    document,
                },
            ),
            r if r < 0.90 => (2, Admission::Removed { date: march }),
            // Failed in February and did not come in March without a reason: February stands.
            _ => (1, Admission::Failed { date: main }),
        }
    } else {
        return None;
    };
    Some((used + 1, admission.describe()))
}

/// One thing staff enter at a school.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The roster: every participant, the rooms and the assignments, in one import.
    Roster,
    Present(usize),
    Absent(usize),
    Start(usize),
    End(usize),
    /// The organiser's act ending the participant's first attempt of the date for a bad recording (§45).
    Act(usize),
    /// A signed sheet by the expert of room `expert`; `variant` shifts the points so two
    /// experts' sheets differ.
    Sheet {
        participant: usize,
        expert: usize,
        variant: u8,
        kind: SheetKind,
    },
    /// The recording of the participant's answer in `attempt`, taken in ([`Plan::audio`]).
    Recording {
        participant: usize,
        attempt: u8,
        duration_ms: i64,
    },
    /// Room `room`'s stream for the day, taken in after its last participant.
    RoomStream {
        room: usize,
        duration_ms: i64,
    },
}

/// From the end of an answer to its recording being taken in: the watched folder waits 30 s
/// for the file to settle, then copies and hashes it.
pub const RECORDING_TAKEN_IN_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetKind {
    First,
    /// Supersedes the participant's latest sheet.
    Correction,
    /// A second expert's sheet that supersedes nothing: a conflict.
    Conflicting,
    /// A sheet whose signature was damaged after signing: must be receipted invalid.
    Tampered,
    /// A sheet by the school's revoked expert: must be receipted invalid.
    ByRevokedExpert,
    /// A sheet by another category than the participant's of record, entered by a hostile
    /// school ([`AdversaryKind::CategoryChange`]): must be refused on receipt.
    OtherCategory,
    /// A sheet for an attempt an act ended ([`AdversaryKind::SheetAfterAct`]): must be refused
    /// on receipt.
    AfterAct,
    /// A sheet by an expert the commission order names for no room
    /// ([`AdversaryKind::ExpertOutsideRoom`]): must be refused on receipt.
    OutsideRoom,
    /// A sheet for an attempt the participant's history does not give on the date
    /// ([`AdversaryKind::WrongAttempt`]): must be refused on receipt.
    OtherAttempt,
}

#[derive(Debug, Clone)]
pub struct SchoolPlan {
    pub node: usize,
    pub municipality: MunicipalityCode,
    pub code: SchoolCode,
    pub participants: Vec<ParticipantPlan>,
    pub rooms: Vec<RoomCode>,
    /// One expert and one interviewer per room.
    pub experts: Vec<PersonId>,
    /// An expert of the school whose certificate the region revoked before the day.
    pub revoked_expert: PersonId,
    /// An expert certified for the school whom the commission order names for no room.
    pub unassigned_expert: PersonId,
    pub interviewers: Vec<PersonId>,
    /// Sorted by time (ms since the day's local midnight).
    pub entries: Vec<(i64, Entry)>,
}

impl SchoolPlan {
    /// The head of the school's commission order, room by room: room `r`'s interviewer, and
    /// its expert with the next room's, who scores the conflicting second sheets.
    #[must_use]
    pub fn commission(&self) -> Vec<giasync_shared::commission::RoomCommission> {
        let n = self.rooms.len();
        (0..n)
            .map(|r| {
                let mut experts = vec![self.experts[r], self.experts[(r + 1) % n]];
                experts.dedup();
                giasync_shared::commission::RoomCommission {
                    room: self.rooms[r],
                    interviewers: vec![self.interviewers[r]],
                    experts,
                }
            })
            .collect()
    }

    /// Has participant `i` absent: their entries give way to an «Н» when they were due.
    fn make_absent(&mut self, i: usize) {
        let about = |e: &Entry| match *e {
            Entry::Present(p)
            | Entry::Absent(p)
            | Entry::Start(p)
            | Entry::End(p)
            | Entry::Act(p)
            | Entry::Recording { participant: p, .. } => p == i,
            Entry::Sheet { participant, .. } => participant == i,
            Entry::Roster | Entry::RoomStream { .. } => false,
        };
        let Some(at) = self
            .entries
            .iter()
            .find(|(_, e)| about(e))
            .map(|(at, _)| *at)
        else {
            return;
        };
        self.entries.retain(|(_, e)| !about(e));
        let place = self.entries.partition_point(|(t, _)| *t <= at);
        self.entries.insert(place, (at, Entry::Absent(i)));
    }
}

/// A fault at a node, as times since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A school's network is cut (the node runs on).
    Offline { node: usize, from: i64, to: i64 },
    /// A node's process is down, restarting from its persisted state.
    Down { node: usize, from: i64, to: i64 },
    /// A node dies while committing its first batch from `at` on (at a school, the first
    /// holding a score sheet): the batch is lost, and the node restarts `down` ms later.
    CrashInCommit { node: usize, at: i64, down: i64 },
}

impl Fault {
    /// When the fault starts (an in-commit crash: when it is armed).
    #[must_use]
    pub fn start(self) -> i64 {
        match self {
            Fault::Offline { from, .. } | Fault::Down { from, .. } => from,
            Fault::CrashInCommit { at, .. } => at,
        }
    }

    /// When the fault ends (an in-commit crash: at the earliest).
    #[must_use]
    pub fn end(self) -> i64 {
        match self {
            Fault::Offline { to, .. } | Fault::Down { to, .. } => to,
            Fault::CrashInCommit { at, down, .. } => at + down,
        }
    }
}

/// One attempt by a hostile node (see [`AdversaryKind`]), at a time since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attack {
    pub node: usize,
    pub kind: AdversaryKind,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub seed: u64,
    pub random_faults: bool,
    pub region: RegionCode,
    pub exam: ExamId,
    /// Unix ms of the exam day's local midnight.
    pub midnight_ms: i64,
    /// The region's clock.
    pub clock: UtcOffset,
    pub nodes: Vec<NodePlan>,
    pub schools: Vec<SchoolPlan>,
    pub faults: Vec<Fault>,
    /// Attempts by hostile nodes, by time.
    pub attacks: Vec<Attack>,
    pub settle_ms: i64,
    pub participants: usize,
    /// The recordings made, if the scenario has them.
    pub audio: Option<crate::scenario::Audio>,
    /// The exam materials package, if the scenario names one.
    pub materials: Option<crate::scenario::Materials>,
}

fn minutes(field: &str, text: &str) -> Result<i64, ScenarioError> {
    Ok(i64::from(minutes_of_day(field, text)?) * MINUTE_MS)
}

fn invalid(field: &str, message: String) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message,
    }
}

/// `total` spread over `parts`: the first `total % parts` get one more.
fn spread(total: u32, parts: u32, i: u32) -> u32 {
    total / parts + u32::from(i < total % parts)
}

impl Plan {
    /// The plan of `scenario` under `seed`; with `random_faults`, faults drawn from the seed
    /// are added to the scenario's (what `sweep` runs).
    pub fn new(scenario: &Scenario, seed: u64, random_faults: bool) -> Result<Plan, ScenarioError> {
        let mut rng = Rng::new(seed);
        let region =
            RegionCode::new(&scenario.region).map_err(|e| invalid("region", e.to_string()))?;
        let exam: ExamId = scenario
            .exam
            .parse()
            .map_err(|e: giasync_shared::DomainError| invalid("exam", e.to_string()))?;
        let midnight_ms = exam.date().days_since_epoch() * 86_400_000
            - i64::from(scenario.utc_offset_hours) * 3_600_000;
        let mut links = scenario.links.clone();
        if random_faults {
            let mut r = rng.fork(1);
            for link in [&mut links.school, &mut links.hub] {
                link.loss = r.unit() * 0.1;
                link.duplication = r.unit() * 0.02;
                link.reordering = r.unit() * 0.1;
            }
        }

        let t = &scenario.topology;
        let mut nodes = vec![NodePlan {
            identity: NodeIdentity {
                region,
                org: OrgCode::Rcoi(region),
                municipality: None,
            },
            kind: Kind::Rcoi,
            upstreams: Vec::new(),
            link: links.hub,
        }];
        let mut municipality_codes = Vec::new();
        for m in 0..t.municipalities {
            let code = MunicipalityCode::new(&format!("{region}{:02}", m + 1))
                .map_err(|e| invalid("topology.municipalities", e.to_string()))?;
            municipality_codes.push(code);
            nodes.push(NodePlan {
                identity: NodeIdentity {
                    region,
                    org: OrgCode::Municipality(code),
                    municipality: None,
                },
                kind: Kind::Moyo,
                upstreams: vec![0],
                link: links.hub,
            });
        }
        let mut schools = Vec::new();
        let mut school_index = 0u32;
        let p = &scenario.participants;
        let d = &scenario.day;
        let first_slot = minutes("day.first_slot", &d.first_slot)?;
        let mut people = rng.fork(2);
        for (m, municipality) in municipality_codes.iter().enumerate() {
            let m = u32::try_from(m).unwrap_or(u32::MAX);
            for s in 0..spread(t.schools, t.municipalities, m) {
                let code = SchoolCode::new(&format!("{municipality}{:02}", s + 1))
                    .map_err(|e| invalid("topology.schools", e.to_string()))?;
                let node = nodes.len();
                nodes.push(NodePlan {
                    identity: NodeIdentity {
                        region,
                        org: OrgCode::School(code),
                        municipality: Some(*municipality),
                    },
                    kind: Kind::School,
                    upstreams: vec![1 + m as usize, 0],
                    link: links.school,
                });
                let count = spread(p.total, t.schools, school_index);
                school_index += 1;
                schools.push(school_plan(
                    node,
                    *municipality,
                    code,
                    count,
                    scenario,
                    exam,
                    &mut people,
                )?);
            }
        }

        let mut faults = Vec::new();
        let mut pick = rng.fork(3);
        let school_nodes: Vec<usize> = schools.iter().map(|s| s.node).collect();
        let moyo_nodes: Vec<usize> = (1..=t.municipalities as usize).collect();
        let chosen = |pick: &mut Rng, what: Target, share: Option<f64>, count: Option<u32>| {
            let mut pool = match what {
                Target::Schools => school_nodes.clone(),
                Target::Moyo => moyo_nodes.clone(),
                Target::Rcoi => return vec![0],
            };
            pick.shuffle(&mut pool);
            let n = match (share, count) {
                (Some(s), _) => (s * pool.len() as f64).round() as usize,
                (None, Some(c)) => c as usize,
                (None, None) => pool.len(),
            };
            pool.truncate(n);
            pool.sort_unstable();
            pool
        };
        for (i, o) in scenario.outages.iter().enumerate() {
            let from = minutes(&format!("outages[{i}].from"), &o.from)?;
            let to = minutes(&format!("outages[{i}].to"), &o.to)?;
            for node in chosen(&mut pick, o.what, o.share, o.count) {
                faults.push(if o.what == Target::Schools {
                    Fault::Offline { node, from, to }
                } else {
                    Fault::Down { node, from, to }
                });
            }
        }
        for (i, c) in scenario.crashes.iter().enumerate() {
            let from = minutes(&format!("crashes[{i}].at"), &c.at)?;
            let to = from + i64::from(c.down_minutes) * MINUTE_MS;
            for node in chosen(&mut pick, c.what, c.share, c.count) {
                faults.push(if c.in_commit {
                    Fault::CrashInCommit {
                        node,
                        at: from,
                        down: to - from,
                    }
                } else {
                    Fault::Down { node, from, to }
                });
            }
        }
        if random_faults {
            faults.extend(random_faults_for(&mut rng.fork(4), &nodes, first_slot));
        }
        // Attacks repeat until the last entry of the day.
        let day_ends = schools
            .iter()
            .filter_map(|s| s.entries.last().map(|e| e.0))
            .max()
            .unwrap_or(0);
        let mut attacks = Vec::new();
        let mut hostile = rng.fork(5);
        for (i, a) in scenario.adversaries.iter().enumerate() {
            let at = minutes(&format!("adversaries[{i}].at"), &a.at)?;
            let what = if a.kind == AdversaryKind::HubForgery {
                Target::Moyo
            } else {
                Target::Schools
            };
            for node in chosen(&mut hostile, what, None, Some(a.count)) {
                let mut t = at;
                loop {
                    attacks.push(Attack {
                        node,
                        kind: a.kind,
                        at: t,
                    });
                    match a.every_minutes {
                        Some(every) if t + i64::from(every) * MINUTE_MS <= day_ends => {
                            t += i64::from(every) * MINUTE_MS;
                        }
                        _ => break,
                    }
                }
            }
        }
        if random_faults {
            faults.extend(random_commit_crashes_for(
                &mut rng.fork(7),
                &nodes,
                first_slot,
            ));
            attacks.extend(random_attacks_for(
                &mut rng.fork(6),
                &nodes,
                first_slot,
                day_ends,
            ));
        }
        attacks.sort_by_key(|a| (a.at, a.node));
        // A school that scores an attempt an act ended does it for its last participant, whom
        // the plan then has absent: an honest sheet for them would meet the act too. (A school
        // changing a category does it to its first participant.)
        for a in attacks
            .iter()
            .filter(|a| a.kind == AdversaryKind::SheetAfterAct)
        {
            if let Some(school) = schools.iter_mut().find(|s| s.node == a.node) {
                school.make_absent(school.participants.len().saturating_sub(1));
            }
        }
        let participants = schools.iter().map(|s| s.participants.len()).sum();
        Ok(Plan {
            name: scenario.name.clone(),
            seed,
            random_faults,
            region,
            exam,
            midnight_ms,
            clock: UtcOffset::from_minutes(i32::from(scenario.utc_offset_hours) * 60)
                .map_err(|e| invalid("utc_offset_hours", e.to_string()))?,
            nodes,
            schools,
            faults,
            attacks,
            settle_ms: i64::from(d.settle_minutes) * MINUTE_MS,
            participants,
            audio: scenario.audio,
            materials: scenario.materials,
        })
    }

    /// The last scripted moment: the last entry or the last fault's end.
    #[must_use]
    pub fn quiet_from(&self) -> i64 {
        let entries = self
            .schools
            .iter()
            .filter_map(|s| s.entries.last().map(|e| e.0))
            .max()
            .unwrap_or(0);
        entries.max(self.last_heal())
    }

    /// When the nodes start: [`NODES_START_BEFORE_MS`] before the first entry or fault.
    #[must_use]
    pub fn starts_at(&self) -> i64 {
        let entries = self
            .schools
            .iter()
            .filter_map(|s| s.entries.first().map(|e| e.0));
        let faults = self.faults.iter().map(|f| f.start());
        entries.chain(faults).min().unwrap_or(0) - NODES_START_BEFORE_MS
    }

    /// When the last fault heals (0 with none).
    #[must_use]
    pub fn last_heal(&self) -> i64 {
        self.faults.iter().map(|f| f.end()).max().unwrap_or(0)
    }
}

/// Faults a sweep adds: a few schools offline, perhaps a МОУО or the РЦОИ down, perhaps crashes.
fn random_faults_for(rng: &mut Rng, nodes: &[NodePlan], first_slot: i64) -> Vec<Fault> {
    let schools: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].kind == Kind::School)
        .collect();
    let hubs: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].kind == Kind::Moyo)
        .collect();
    let window = |rng: &mut Rng, longest_min: u64| {
        let from = first_slot - 60 * MINUTE_MS + rng.below(300) as i64 * MINUTE_MS;
        let to = from + rng.between(1, longest_min) as i64 * MINUTE_MS;
        (from, to)
    };
    let mut faults = Vec::new();
    for _ in 0..rng.between(1, 3) {
        let node = schools[rng.below(schools.len() as u64) as usize];
        let (from, to) = window(rng, 180);
        faults.push(Fault::Offline { node, from, to });
    }
    if rng.chance(0.5) && !hubs.is_empty() {
        let node = hubs[rng.below(hubs.len() as u64) as usize];
        let (from, to) = window(rng, 120);
        faults.push(Fault::Down { node, from, to });
    }
    if rng.chance(0.3) {
        let (from, to) = window(rng, 60);
        faults.push(Fault::Down { node: 0, from, to });
    }
    for _ in 0..rng.below(3) {
        let node = rng.below(nodes.len() as u64) as usize;
        let (from, to) = window(rng, 30);
        faults.push(Fault::Down { node, from, to });
    }
    faults
}

/// In-commit crashes a sweep adds: perhaps one at a school, perhaps one at a hub or the РЦОИ.
fn random_commit_crashes_for(rng: &mut Rng, nodes: &[NodePlan], first_slot: i64) -> Vec<Fault> {
    let mut faults = Vec::new();
    for schools in [true, false] {
        let among: Vec<usize> = (0..nodes.len())
            .filter(|&i| (nodes[i].kind == Kind::School) == schools)
            .collect();
        if among.is_empty() || !rng.chance(0.5) {
            continue;
        }
        faults.push(Fault::CrashInCommit {
            node: among[rng.below(among.len() as u64) as usize],
            at: first_slot + rng.below(240) as i64 * MINUTE_MS,
            down: rng.between(1, 20) as i64 * MINUTE_MS,
        });
    }
    faults
}

/// Attacks a sweep adds: perhaps a МОУО hub forging in a school's protocol, perhaps a school
/// writing another's roster, vouching for its own sheets, replaying an old frame or flooding
/// its hub with unfinished fragments, each from a time in the morning and again every 30 to 120
/// minutes until the day's last entry.
fn random_attacks_for(
    rng: &mut Rng,
    nodes: &[NodePlan],
    first_slot: i64,
    day_ends: i64,
) -> Vec<Attack> {
    let of_kind = |kind: Kind| -> Vec<usize> {
        (0..nodes.len())
            .filter(|&i| nodes[i].kind == kind)
            .collect()
    };
    let (schools, hubs) = (of_kind(Kind::School), of_kind(Kind::Moyo));
    let mut attacks = Vec::new();
    for (kind, among, chance) in [
        (AdversaryKind::HubForgery, &hubs, 0.5),
        (AdversaryKind::ForeignWrite, &schools, 0.3),
        (AdversaryKind::ForgedReceipt, &schools, 0.3),
        (AdversaryKind::Replay, &schools, 0.3),
        (AdversaryKind::FragmentFlood, &schools, 0.2),
        (AdversaryKind::CategoryChange, &schools, 0.3),
        (AdversaryKind::SheetAfterAct, &schools, 0.3),
        (AdversaryKind::ExpertOutsideRoom, &schools, 0.3),
        (AdversaryKind::WrongAttempt, &schools, 0.3),
    ] {
        if among.is_empty() || !rng.chance(chance) {
            continue;
        }
        let node = among[rng.below(among.len() as u64) as usize];
        let every = rng.between(30, 120) as i64 * MINUTE_MS;
        let mut at = first_slot - 30 * MINUTE_MS + rng.below(240) as i64 * MINUTE_MS;
        while at <= day_ends {
            attacks.push(Attack { node, kind, at });
            at += every;
        }
    }
    attacks
}

fn school_plan(
    node: usize,
    municipality: MunicipalityCode,
    code: SchoolCode,
    count: u32,
    scenario: &Scenario,
    exam: ExamId,
    rng: &mut Rng,
) -> Result<SchoolPlan, ScenarioError> {
    let p = &scenario.participants;
    let d = &scenario.day;
    let roster_at = minutes("day.roster_at", &d.roster_at)?;
    let first_slot = minutes("day.first_slot", &d.first_slot)?;
    let room_count = count.div_ceil(p.per_room).max(1);
    let rooms = (0..room_count)
        .map(|r| RoomCode::new(&format!("{}", 101 + r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("participants.per_room", e.to_string()))?;
    let person = |prefix: &str, r: u32| {
        PersonId::new(&format!("{prefix}-{code}-{}", r + 1))
            .map_err(|e| invalid("topology.schools", e.to_string()))
    };
    let experts = (0..room_count)
        .map(|r| person("exp", r))
        .collect::<Result<Vec<_>, _>>()?;
    let interviewers = (0..room_count)
        .map(|r| person("int", r))
        .collect::<Result<Vec<_>, _>>()?;
    let revoked_expert = PersonId::new(&format!("exp-{code}-revoked"))
        .map_err(|e| invalid("topology.schools", e.to_string()))?;
    let unassigned_expert = PersonId::new(&format!("exp-{code}-unassigned"))
        .map_err(|e| invalid("topology.schools", e.to_string()))?;
    let mut participants = Vec::new();
    for i in 0..count {
        let category = if rng.chance(p.ovz_share) {
            OVZ_CATEGORIES[rng.below(OVZ_CATEGORIES.len() as u64) as usize]
        } else {
            Category::Standard
        };
        let (first_attempt, admitted) = match history(rng, exam) {
            Some((first, admitted)) => (first, Some(admitted)),
            None => (1, None),
        };
        participants.push(ParticipantPlan {
            id: ParticipantId::new(&format!("{code}-{:04}", i + 1))
                .map_err(|e| invalid("participants.total", e.to_string()))?,
            category,
            room: (i % room_count) as usize,
            retake: false,
            first_attempt,
            admitted,
        });
    }
    let mut entries = vec![(roster_at, Entry::Roster)];
    let mut retakes = Vec::new();
    let mut invalid_count = 0u32;
    let minute = |m: u64| m as i64 * MINUTE_MS;
    // Minutes drawn from an inclusive range, as ms.
    let draw = |rng: &mut Rng, range: [u32; 2]| {
        minute(rng.between(u64::from(range[0]), u64::from(range[1])))
    };
    let audio = scenario.audio.is_some();
    let streams = scenario.audio.is_some_and(|a| a.room_streams);
    for room in 0..room_count as usize {
        let mut at = first_slot;
        for (i, person) in participants.iter().enumerate() {
            if person.room != room {
                continue;
            }
            if rng.chance(p.absent_share) {
                entries.push((at, Entry::Absent(i)));
                continue;
            }
            entries.push((at, Entry::Present(i)));
            entries.push((at, Entry::Start(i)));
            let started = at;
            at += draw(rng, d.slot_minutes);
            if person.category.is_ovz() {
                at += minute(u64::from(d.ovz_extra_minutes));
            }
            entries.push((at, Entry::End(i)));
            if audio {
                entries.push((
                    at + RECORDING_TAKEN_IN_MS,
                    Entry::Recording {
                        participant: i,
                        attempt: person.first_attempt,
                        duration_ms: at - started,
                    },
                ));
            }
            // Listened back, the recording is bad: an act, and the participant answers again
            // with another variant (§45); the room log's times become the second answer's.
            // Not the first and last participants, whom hostile schools' sheets name.
            let targeted = i == 0 || i + 1 == participants.len();
            if !targeted && p.retake_share > 0.0 && rng.chance(p.retake_share) {
                entries.push((at, Entry::Act(i)));
                entries.push((at, Entry::Start(i)));
                let started = at;
                at += draw(rng, d.slot_minutes);
                if person.category.is_ovz() {
                    at += minute(u64::from(d.ovz_extra_minutes));
                }
                entries.push((at, Entry::End(i)));
                if audio {
                    entries.push((
                        at + RECORDING_TAKEN_IN_MS,
                        Entry::Recording {
                            participant: i,
                            attempt: person.first_attempt + 1,
                            duration_ms: at - started,
                        },
                    ));
                }
                retakes.push(i);
            }
            let scored = at + draw(rng, d.scoring_minutes);
            entries.push((
                scored,
                Entry::Sheet {
                    participant: i,
                    expert: room,
                    variant: 0,
                    kind: SheetKind::First,
                },
            ));
            let roll = rng.unit();
            if roll < p.correction_share {
                let later = scored + draw(rng, d.correction_minutes);
                entries.push((
                    later,
                    Entry::Sheet {
                        participant: i,
                        expert: room,
                        variant: 1,
                        kind: SheetKind::Correction,
                    },
                ));
            } else if roll < p.correction_share + p.conflict_share {
                // Another room's expert (or, in a one-room school, the same one) scores the
                // participant too, without seeing the first sheet.
                entries.push((
                    scored,
                    Entry::Sheet {
                        participant: i,
                        expert: (room + 1) % room_count as usize,
                        variant: 2,
                        kind: SheetKind::Conflicting,
                    },
                ));
            }
            // Drawn only when asked for, so scenarios without invalid sheets keep their plans.
            if p.invalid_share > 0.0 && rng.chance(p.invalid_share) {
                let kind = if invalid_count.is_multiple_of(2) {
                    SheetKind::Tampered
                } else {
                    SheetKind::ByRevokedExpert
                };
                invalid_count += 1;
                entries.push((
                    scored + MINUTE_MS,
                    Entry::Sheet {
                        participant: i,
                        expert: room,
                        variant: 3,
                        kind,
                    },
                ));
            }
        }
        if streams {
            entries.push((
                at + RECORDING_TAKEN_IN_MS,
                Entry::RoomStream {
                    room,
                    duration_ms: at - first_slot,
                },
            ));
        }
    }
    // Stable: entries at the same minute keep their order (present before start, a sheet
    // before its conflicting twin).
    for i in retakes {
        participants[i].retake = true;
    }
    entries.sort_by_key(|e| e.0);
    Ok(SchoolPlan {
        node,
        municipality,
        code,
        participants,
        rooms,
        experts,
        revoked_expert,
        unassigned_expert,
        interviewers,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"
            name = "t"
            [topology]
            municipalities = 3
            schools = 7
            [participants]
            total = 100
            per_room = 6
            ovz_share = 0.2
            absent_share = 0.1
            correction_share = 0.1
            conflict_share = 0.1
            [links.school]
            latency_ms = 30
            bandwidth_kbit_s = 1000
            [links.hub]
            latency_ms = 10
            bandwidth_kbit_s = 10000
            [[outages]]
            what = "schools"
            share = 0.3
            from = "08:00"
            to = "13:00"
            [[outages]]
            what = "moyo"
            count = 1
            from = "10:00"
            to = "12:00"
            "#,
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn counts_are_spread_and_every_participant_has_a_day() {
        let plan = Plan::new(&scenario(), 5, false).unwrap();
        assert_eq!(plan.nodes.len(), 1 + 3 + 7);
        assert_eq!(plan.participants, 100);
        assert_eq!(plan.schools.len(), 7);
        let sizes: Vec<usize> = plan.schools.iter().map(|s| s.participants.len()).collect();
        assert!(sizes.iter().all(|&n| n == 14 || n == 15), "{sizes:?}");
        for school in &plan.schools {
            assert_eq!(school.entries[0].1, Entry::Roster);
            assert!(school.entries.windows(2).all(|w| w[0].0 <= w[1].0));
            for i in 0..school.participants.len() {
                let marked = school
                    .entries
                    .iter()
                    .any(|e| matches!(e.1, Entry::Absent(p) | Entry::Present(p) if p == i));
                assert!(marked, "participant {i} of {} has no mark", school.code);
            }
        }
        // 30 % of 7 schools offline, one МОУО down.
        let offline = plan
            .faults
            .iter()
            .filter(|f| matches!(f, Fault::Offline { .. }))
            .count();
        assert_eq!(offline, 2);
        assert!(
            plan.faults
                .iter()
                .any(|f| matches!(f, Fault::Down { node, .. } if (1..=3).contains(node)))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = Plan::new(&scenario(), 9, true).unwrap();
        let b = Plan::new(&scenario(), 9, true).unwrap();
        let c = Plan::new(&scenario(), 10, true).unwrap();
        assert_eq!(a.faults, b.faults);
        assert_eq!(a.schools[0].entries, b.schools[0].entries);
        assert!(a.faults != c.faults || a.schools[0].entries != c.schools[0].entries);
    }

    /// On the main date everyone sits attempt 1 with no admission; on the additional dates of
    /// 2024 (13 March, 15 April) each participant comes with a reason and the attempt after
    /// those their history used: March 1–3 (a same-day retake in February used two), April 2–3.
    #[test]
    fn an_additional_date_brings_each_participant_a_history() {
        let firsts = |exam: &str| {
            let mut s = scenario();
            s.exam = exam.to_owned();
            let plan = Plan::new(&s, 5, false).unwrap();
            let people: Vec<&ParticipantPlan> =
                plan.schools.iter().flat_map(|s| &s.participants).collect();
            let admitted = people.iter().filter(|p| p.admitted.is_some()).count();
            let firsts: BTreeSet<u8> = people.iter().map(|p| p.first_attempt).collect();
            (admitted, firsts)
        };
        assert_eq!(firsts("is-2024-02-14"), (0, BTreeSet::from([1])));
        assert_eq!(firsts("is-2024-03-13"), (100, BTreeSet::from([1, 2, 3])));
        assert_eq!(firsts("is-2024-04-15"), (100, BTreeSet::from([2, 3])));
    }

    /// A sweep meets every kind of adversary and in-commit crashes at schools and elsewhere,
    /// each by the kind of node it concerns; a plain run adds none.
    #[test]
    fn a_sweep_draws_adversaries_and_crashes_in_a_commit() {
        let mut kinds = BTreeSet::new();
        let (mut at_schools, mut elsewhere) = (0, 0);
        for seed in 1..=40 {
            let plan = Plan::new(&scenario(), seed, true).unwrap();
            for a in &plan.attacks {
                let expected = if a.kind == AdversaryKind::HubForgery {
                    Kind::Moyo
                } else {
                    Kind::School
                };
                assert_eq!(plan.nodes[a.node].kind, expected, "{a:?}");
                kinds.insert(format!("{:?}", a.kind));
            }
            for f in &plan.faults {
                if let Fault::CrashInCommit { node, .. } = *f {
                    if plan.nodes[node].kind == Kind::School {
                        at_schools += 1;
                    } else {
                        elsewhere += 1;
                    }
                }
            }
            let plain = Plan::new(&scenario(), seed, false).unwrap();
            assert!(plain.attacks.is_empty() && plain.faults.len() < plan.faults.len());
        }
        assert_eq!(kinds.len(), 9, "{kinds:?}");
        assert!(at_schools > 5 && elsewhere > 5, "{at_schools} {elsewhere}");
    }
}
