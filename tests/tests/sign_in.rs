//! Sign-in on a school's pages under attack (issue 17, item 7): 64 wrong PINs for one expert
//! sent at once are not all evaluated; at most five wrong PINs are ever evaluated before the
//! client is locked out of that person, and then even the right PIN waits.
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
    let region = giasync_tests::demo_region_listed(dir.path(), 47_400, 1);
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
