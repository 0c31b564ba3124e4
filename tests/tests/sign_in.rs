//! A node's pages under attack (issue 17, items 7 and 8). Sign-in: 64 wrong PINs for one expert
//! sent at once are not all evaluated; at most five wrong PINs are ever evaluated before the
//! client is locked out of that person, and then even the right PIN waits. Host: a request naming
//! another host (DNS rebinding) is refused by the school's pages and the hub's. A hub's
//! oversight (item 14): only a person of the hub signs in.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use giasync_node::web::school::PIN_FAILURES_MAX;
use giasync_shared::codes::PersonRole;

/// What the sign-in answered: the message its redirect carries (ASCII lower-cased with the head).
fn sign_in(addr: std::net::SocketAddr, person: &str, pin: &str) -> String {
    let (status, head, _) = giasync_tests::http_with_head(
        addr,
        "POST",
        "/login",
        "application/x-www-form-urlencoded",
        &format!("person={person}&pin={pin}"),
    )
    .unwrap();
    assert_eq!(status, 303, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location:"))
        .unwrap()
        .trim();
    giasync_tests::percent_decode(location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_pins_are_evaluated_one_at_a_time_and_lock_after_five() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 47_450, 1);
    let config = giasync_tests::node_config(dir.path(), "420101", &[]);
    let node = giasync_node::service::start(config).await.unwrap();
    let web = node.web.unwrap();
    let expert = region
        .people
        .iter()
        .find(|p| p.role == PersonRole::Expert && p.org == "420101")
        .unwrap();
    let (id, right) = (expert.id.to_string(), expert.pin.clone());
    // A wrong PIN of the same shape: the right one with its first digit changed.
    let wrong: String = std::iter::once(if right.starts_with('1') { '2' } else { '1' })
        .chain(right.chars().skip(1))
        .collect();

    let answers = tokio::task::spawn_blocking({
        let (id, wrong) = (id.clone(), wrong.clone());
        move || {
            let threads: Vec<_> = (0..64)
                .map(|_| {
                    let (id, wrong) = (id.clone(), wrong.clone());
                    std::thread::spawn(move || sign_in(web, &id, &wrong))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        }
    })
    .await
    .unwrap();
    let evaluated = answers.iter().filter(|a| a.contains("Неверный")).count();
    assert!(
        (1..=PIN_FAILURES_MAX as usize).contains(&evaluated),
        "{evaluated} of 64 parallel wrong PINs were evaluated"
    );
    assert!(
        answers.iter().all(|a| a.contains("Неверный")
            || a.contains("уже проверяется")
            || a.contains("проверяет другие входы")
            || a.contains("Слишком много")),
        "{answers:?}"
    );

    // One after another, the client reaches exactly five evaluated wrong PINs, then is locked.
    let (id_, wrong_, right_) = (id.clone(), wrong.clone(), right.clone());
    let (more, locked) = tokio::task::spawn_blocking(move || {
        let mut more = 0;
        loop {
            let answer = sign_in(web, &id_, &wrong_);
            if answer.contains("Слишком много") {
                break;
            }
            assert!(answer.contains("Неверный"), "{answer}");
            more += 1;
            assert!(more <= PIN_FAILURES_MAX as usize, "never locked");
        }
        (more, sign_in(web, &id_, &right_))
    })
    .await
    .unwrap();
    assert_eq!(evaluated + more, PIN_FAILURES_MAX as usize);
    assert!(
        locked.contains("Слишком много"),
        "the right PIN got {locked:?}"
    );
    node.stop();
}

/// The status of a request to `addr` that names `host` (and, for a POST, `origin`).
fn status_naming(
    addr: std::net::SocketAddr,
    method: &str,
    host: &str,
    origin: Option<&str>,
) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let body = "person=nobody&pin=000000";
    let mut request = format!("{method} /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    if method == "POST" {
        request.push_str(body);
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refuse_a_request_naming_another_host() {
    // Issue 17, item 8: DNS rebinding. A page of evil.example whose name now points at the node
    // sends `Host: evil.example` and `Origin: http://evil.example`; both match each other, so
    // only the host check stops it.
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_500, 1);
    let hub = giasync_node::service::start(giasync_tests::node_config(dir.path(), "4201", &[]))
        .await
        .unwrap();
    let school =
        giasync_node::service::start(giasync_tests::node_config(dir.path(), "420101", &[]))
            .await
            .unwrap();
    let (school_web, hub_web) = (school.web.unwrap(), hub.web.unwrap());
    let statuses = tokio::task::spawn_blocking(move || {
        let own = school_web.to_string();
        [
            status_naming(school_web, "GET", &own, None),
            status_naming(school_web, "GET", "localhost", None),
            status_naming(school_web, "GET", "evil.example", None),
            status_naming(
                school_web,
                "POST",
                "evil.example",
                Some("http://evil.example"),
            ),
            status_naming(hub_web, "GET", "evil.example:80", None),
        ]
    })
    .await
    .unwrap();
    assert_eq!(statuses, [200, 200, 421, 421, 421]);
    school.stop();
    hub.stop();
}

/// Hardening item 14: a МОУО hub's oversight pages, JSON and chart answer nobody until its
/// coordinator signs in; a school's organiser of the same municipality cannot sign in there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubs_oversight_needs_a_person_of_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 47_700, 1);
    let hub = giasync_node::service::start(giasync_tests::node_config(dir.path(), "4201", &[]))
        .await
        .unwrap();
    let web = hub.web.unwrap();
    let person = |role: PersonRole, org: &str| {
        region
            .people
            .iter()
            .find(|p| p.role == role && p.org == org)
            .unwrap()
            .clone()
    };
    let coordinator = person(PersonRole::Coordinator, "4201");
    let organiser = person(PersonRole::Organiser, "420101");
    let outcome = tokio::task::spawn_blocking(move || {
        let get = |path: &str, cookie: Option<&str>| {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(web).unwrap();
            let mut request =
                format!("GET {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n");
            if let Some(c) = cookie {
                request.push_str(&format!("Cookie: {c}\r\n"));
            }
            request.push_str("\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap()
        };
        let before = [
            get("/", None),
            get("/api/oversight", None),
            get("/chart.svg", None),
        ];
        let stranger = sign_in(web, organiser.id.as_str(), &organiser.pin);
        let wrong = sign_in(web, coordinator.id.as_str(), "000000-wrong");
        let (status, head, _) = giasync_tests::http_with_head(
            web,
            "POST",
            "/login",
            "application/x-www-form-urlencoded",
            &format!("person={}&pin={}", coordinator.id, coordinator.pin),
        )
        .unwrap();
        assert_eq!(status, 303, "{head}");
        let cookie = head
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie:"))
            .and_then(|c| c.trim().split(';').next())
            .unwrap()
            .to_owned();
        let after = [
            get("/", Some(&cookie)),
            get("/api/oversight", Some(&cookie)),
            get("/chart.svg", Some(&cookie)),
        ];
        let forged = get("/api/oversight", Some("giasync_hub_session=00ff"));
        (before, stranger, wrong, after, forged)
    })
    .await
    .unwrap();
    let (before, stranger, wrong, after, forged) = outcome;
    assert_eq!(before, [303, 401, 401], "nothing before sign-in");
    assert!(stranger.contains("Нет такого сотрудника"), "{stranger}");
    assert!(wrong.contains("Неверный pin"), "{wrong}");
    assert_eq!(after, [200, 200, 200], "the coordinator sees the oversight");
    assert_eq!(forged, 401);
    hub.stop();
}

/// A person whose certificate the region revoked is neither offered at sign-in nor signed in
/// with their key file and PIN; their colleagues are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_person_cannot_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 47_800, 1);
    let expert = |n: usize| {
        region
            .people
            .iter()
            .filter(|p| p.role == PersonRole::Expert && p.org == "420101")
            .nth(n)
            .unwrap()
            .clone()
    };
    let (revoked, colleague) = (expert(0), expert(1));
    let mut pki = giasync_certs::pki::Pki::open(&dir.path().join("pki")).unwrap();
    let serial = pki
        .issued()
        .iter()
        .find(|i| i.identity.contains(&format!("/{}?", revoked.id)))
        .unwrap()
        .serial;
    pki.revoke(serial, "left the school", giasync_tests::now())
        .unwrap();
    std::fs::write(
        dir.path().join("420101").join("crl.pem"),
        pki.crl_pem().unwrap(),
    )
    .unwrap();
    let config = giasync_tests::node_config(dir.path(), "420101", &[]);
    let node = giasync_node::service::start(config).await.unwrap();
    let web = node.web.unwrap();
    let outcome = tokio::task::spawn_blocking(move || {
        let (_, form) = giasync_tests::http_get(web, "/login").unwrap();
        let offered = |id: &str| form.contains(&format!("value=\"{id}\""));
        (
            offered(revoked.id.as_str()),
            offered(colleague.id.as_str()),
            sign_in(web, revoked.id.as_str(), &revoked.pin),
            sign_in(web, colleague.id.as_str(), &colleague.pin),
        )
    })
    .await;
    node.stop();
    let (revoked_offered, colleague_offered, revoked_answer, colleague_answer) = outcome.unwrap();
    assert!(!revoked_offered, "the revoked expert is offered");
    assert!(colleague_offered, "the colleague is not offered");
    assert!(
        revoked_answer.contains("Нет такого сотрудника"),
        "{revoked_answer}"
    );
    assert_eq!(colleague_answer, "/", "the colleague signs in");
}
