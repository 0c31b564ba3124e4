//! A minimal W3C WebDriver client for the browser tests: Debian's `chromedriver` driving headless
//! `chromium` (both installed by `.ci/test`). Only what the tests use: open a page, find
//! elements by CSS selector, type, click, read the page, take a screenshot.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver and browser end when it is dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

fn call(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Value {
    let text = if method == "GET" || method == "DELETE" {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = crate::http(addr, method, path, "application/json", &text)
        .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"));
    let value: Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}: {answer}"));
    assert!(
        status == 200,
        "chromedriver {method} {path} answered {status}: {answer}"
    );
    value["value"].clone()
}

/// How many times a chromedriver that exits before it answers is started again.
const DRIVER_STARTS_MAX: usize = 5;

impl Browser {
    /// A chromedriver answering on a free loopback port, or `None` when it exited first.
    fn driver() -> Option<(Child, SocketAddr)> {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (bash .ci/test installs Debian's chromium-driver)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http_get(addr, "/status").is_err() {
            if driver.try_wait().ok().flatten().is_some() {
                return None;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some((driver, addr))
    }

    /// Starts chromedriver on a free port and a headless Chromium with every host name but
    /// loopback resolving to nothing.
    ///
    /// The port is one the system just gave out and took back: a fixed one lies in the
    /// ephemeral range, where another test's outgoing connection may hold it, and chromedriver
    /// then exits at once (the runs of 2026-12-06 that failed with "chromedriver did not
    /// start"). A driver that exits before it answers is started again on another port.
    pub fn start() -> Browser {
        let (driver, addr) = (0..DRIVER_STARTS_MAX)
            .find_map(|_| Self::driver())
            .expect("chromedriver did not start");
        let profile = tempfile::tempdir().expect("a profile folder");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    "--window-size=1300,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let value = call(addr, "POST", "/session", &capabilities);
        let session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        call(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    pub fn open(&self, url: &str) {
        self.call("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` in the page (a function body; `return` gives its value).
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// The id of the element `css` selects, if any.
    fn element(&self, css: &str) -> Option<String> {
        let (status, answer) = crate::http(
            self.addr,
            "POST",
            &format!("/session/{}/element", self.session),
            "application/json",
            &json!({"using": "css selector", "value": css}).to_string(),
        )
        .ok()?;
        if status != 200 {
            return None;
        }
        let value: Value = serde_json::from_str(&answer).ok()?;
        value["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// The element `css` selects; panics naming the selector and the page when there is none.
    pub fn find(&self, css: &str) -> String {
        self.element(css)
            .unwrap_or_else(|| panic!("no element {css} on {}:\n{}", self.url(), self.source()))
    }

    /// Whether `css` selects anything.
    pub fn has(&self, css: &str) -> bool {
        let found = self.call(
            "POST",
            "/elements",
            &json!({"using": "css selector", "value": css}),
        );
        found.as_array().is_some_and(|a| !a.is_empty())
    }

    /// Runs `action` on the element `css` selects, finding it again when the page replaced it
    /// in between (pages reload themselves when the day changes).
    fn on_element(&self, css: &str, action: &str, body: &Value) {
        for attempt in 0.. {
            let element = self.find(css);
            let (status, answer) = crate::http(
                self.addr,
                "POST",
                &format!("/session/{}/element/{element}/{action}", self.session),
                "application/json",
                &body.to_string(),
            )
            .expect("chromedriver answers");
            if status == 200 {
                return;
            }
            assert!(
                attempt < 5 && answer.contains("stale element"),
                "{action} on {css}: {status} {answer}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "clear", &json!({}));
        self.on_element(css, "value", &json!({ "text": text }));
    }

    pub fn click(&self, css: &str) {
        self.on_element(css, "click", &json!({}));
    }

    /// The text of what `css` selects, or None when nothing does (or the page was just
    /// replaced, as pages reloading themselves are).
    pub fn try_text(&self, css: &str) -> Option<String> {
        let element = self.element(css)?;
        let (status, answer) = crate::http(
            self.addr,
            "GET",
            &format!("/session/{}/element/{element}/text", self.session),
            "",
            "",
        )
        .ok()?;
        if status != 200 {
            return None;
        }
        let value: Value = serde_json::from_str(&answer).ok()?;
        value["value"].as_str().map(str::to_owned)
    }

    /// Waits up to `seconds` for `done`, panicking with `what` and the page if it never is.
    pub fn wait_for(&self, seconds: u64, what: &str, done: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "never {what} (at {}):\n{}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of what `css` selects, read again when the page replaced the element in between
    /// (pages reload themselves when the day changes); panics when nothing is selected.
    pub fn text(&self, css: &str) -> String {
        for _ in 0..5 {
            if let Some(text) = self.try_text(css) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/text"), &json!({}))
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", &json!({}))
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", &json!({}))
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Saves a PNG screenshot of the page to `target/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) {
        let data = self.call("GET", "/screenshot", &json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or(""))
            .expect("base64 PNG");
        std::fs::write(crate::screenshot_dir().join(format!("{name}.png")), png)
            .expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = crate::http(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
            "",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
