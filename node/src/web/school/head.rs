//! The head of the school's page: the commission order (seed 002 §22, §37) — who interviews and
//! who scores in which room — signed with the head's key; each change is a new edition.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{PersonId, PersonRole, RoomCode};
use giasync_shared::commission::{Commission, RoomCommission};

use super::layout::{back, message_block, now_ms, page};
use super::sign_in::gate;
use super::{SchoolWeb, russian};
use crate::app::{Answer, Command};
use crate::web::{WebError, escape};

pub(super) async fn commission(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "commission", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    let current = day.commission.as_ref();
    match current {
        Some(order) => b.push_str(&format!(
            "<p id=\"order\" class=\"msg\">Приказ о составе комиссии, редакция {}, подписан {} ({}).</p>",
            order.edition,
            escape(order.head.as_str()),
            order.at.at_offset(day.utc_offset).ru()
        )),
        None => b.push_str(
            "<p id=\"order\">Приказа пока нет: эксперты могут оценивать в любой аудитории.</p>",
        ),
    }
    let named = |room: RoomCode, person: PersonId, expert: bool| {
        current.is_some_and(|o| {
            o.rooms.iter().any(|r| {
                r.room == room
                    && if expert {
                        r.experts.contains(&person)
                    } else {
                        r.interviewers.contains(&person)
                    }
            })
        })
    };
    let of_role = |role: PersonRole| -> Vec<(PersonId, String)> {
        web.0
            .people
            .iter()
            .filter(|p| p.identity.role == role)
            .map(|p| (p.identity.id, p.identity.id.to_string()))
            .collect()
    };
    let (interviewers, experts) = (
        of_role(PersonRole::Interviewer),
        of_role(PersonRole::Expert),
    );
    b.push_str("<form method=\"post\" action=\"/commission\" id=\"commission\"><table><tr><th>Аудитория</th><th>Собеседники</th><th>Эксперты</th></tr>");
    for r in &day.rooms {
        let room = r.code;
        let boxes = |people: &[(PersonId, String)], expert: bool| -> String {
            let field = if expert { "e" } else { "i" };
            people
                .iter()
                .map(|(id, name)| {
                    format!(
                        "<label><input type=\"checkbox\" name=\"{field}:{room}\" value=\"{id}\"{}> {}</label><br>",
                        if named(room, *id, expert) { " checked" } else { "" },
                        escape(name),
                        room = escape(room.as_str()),
                        id = escape(id.as_str())
                    )
                })
                .collect()
        };
        b.push_str(&format!(
            "<tr id=\"room-{c}\"><td>{c}</td><td>{}</td><td>{}</td></tr>",
            boxes(&interviewers, false),
            boxes(&experts, true),
            c = escape(room.as_str())
        ));
    }
    b.push_str(&format!(
        "</table><p><button type=\"submit\">Подписать приказ (редакция {})</button></p></form>",
        current.map_or(1, |o| o.edition.saturating_add(1))
    ));
    page("Состав комиссии", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn commission_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let who = match gate(&web, &headers, "commission") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let day = web.day(&who, None).await?;
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let mut rooms: BTreeMap<RoomCode, (BTreeSet<PersonId>, BTreeSet<PersonId>)> =
            BTreeMap::new();
        for (field, value) in &form {
            let Some((role, room)) = field.split_once(':') else {
                continue;
            };
            let room = RoomCode::new(room).map_err(checked)?;
            let person = PersonId::new(value).map_err(checked)?;
            let entry = rooms.entry(room).or_default();
            match role {
                "i" => entry.0.insert(person),
                "e" => entry.1.insert(person),
                _ => continue,
            };
        }
        let order = Commission {
            exam: day.exam,
            school: day.school,
            edition: day
                .commission
                .as_ref()
                .map_or(1, |o| o.edition.saturating_add(1)),
            head: who.person.id,
            at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
            rooms: rooms
                .into_iter()
                .map(|(room, (interviewers, experts))| RoomCommission {
                    room,
                    interviewers: interviewers.into_iter().collect(),
                    experts: experts.into_iter().collect(),
                })
                .collect(),
        };
        let statement = order
            .sign(&who.key)
            .map_err(|e| format!("Приказ не подписан: {e}"))?;
        match web
            .apply(
                &who,
                Command::Commission {
                    exam: day.exam,
                    statement: statement.as_bytes().to_vec(),
                    head_cert: who.cert_der.clone(),
                },
            )
            .await?
        {
            Answer::CommissionSigned(c) => Ok(format!(
                "Приказ подписан: редакция {}, аудиторий: {}",
                c.edition, c.rooms
            )),
            _ => Err(russian(&WebError::Unexpected)),
        }
    }
    .await;
    back("/commission", result)
}
