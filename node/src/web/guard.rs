//! What every page of a node checks before anything else (the school's interface and a hub's
//! oversight; not the public look-up, which is meant to be reached from anywhere):
//!
//! - **the host**: a request must name the node by an IP address, `localhost`, or a name in
//!   `[node] web_names`. A website a staff browser visits could otherwise point its own name at
//!   the node (DNS rebinding) and drive the pages as that browser, cookies aside;
//! - **the origin of a POST**: a browser names the page a form was sent from, and it must be
//!   this node's own host (the session cookie is also `SameSite=Strict`; this is the second lock).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use giasync_shared::config::HostName;

/// `router` behind the checks.
pub fn apply(router: Router, names: Vec<HostName>) -> Router {
    let names: Arc<[HostName]> = names.into();
    router.layer(axum::middleware::from_fn_with_state(names, check))
}

async fn check(State(names): State<Arc<[HostName]>>, request: Request, next: Next) -> Response {
    if let Some(refusal) = refusal(&names, &request) {
        return refusal;
    }
    next.run(request).await
}

/// Why `request` is not served, if it is not.
fn refusal(names: &[HostName], request: &Request) -> Option<Response> {
    let header_text = |name| request.headers().get(name).and_then(|h| h.to_str().ok());
    let host = header_text(header::HOST);
    if !host.is_some_and(|h| host_allowed(h, names)) {
        return Some(
            (
                StatusCode::MISDIRECTED_REQUEST,
                "Запрос к узлу по чужому имени отклонён",
            )
                .into_response(),
        );
    }
    let origin = header_text(header::ORIGIN).filter(|_| request.method() == Method::POST)?;
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    (origin_host != host)
        .then(|| (StatusCode::FORBIDDEN, "Запрос с чужой страницы отклонён").into_response())
}

/// Whether `host` (a `Host` header: a name or address, with an optional port) names this node.
#[must_use]
pub fn host_allowed(host: &str, names: &[HostName]) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal, `[::1]:7480`.
        return rest
            .split_once(']')
            .is_some_and(|(addr, _)| addr.parse::<Ipv6Addr>().is_ok());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return false,
        None => host,
    };
    name.parse::<Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| name.eq_ignore_ascii_case(n.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;

    #[test]
    fn only_addresses_localhost_and_the_configured_names_are_this_node() {
        let names = [HostName::try_from("OU-420101.local".to_owned()).unwrap()];
        for host in [
            "127.0.0.1:7480",
            "192.168.1.20",
            "[::1]:7480",
            "localhost:7480",
            "ou-420101.local",
            "ou-420101.LOCAL:7480",
        ] {
            assert!(host_allowed(host, &names), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:7480",
            "127.0.0.1.evil.example",
            "ou-420101.local.evil.example",
            "[evil]:80",
            "localhost:",
            "",
        ] {
            assert!(!host_allowed(host, &names), "{host}");
        }
    }
}
