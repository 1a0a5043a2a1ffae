//! The observer's page in a real browser: headless Chromium (Debian's
//! `chromium`, which scripts/test installs) opens a sandbox deal's page while
//! the deal runs, sees the page reach `completed` by itself, and saves a
//! screenshot of the timeline to target/test-artifacts/observer-timeline.png;
//! then a deal with an inspection period, whose window the page counts down.

mod common;

use common::sandbox::{interlock, observer_web_address as web_address, ok, propose_to_seller, Sandbox};

use std::path::Path;
use std::process::{Command, Output};

/// The browser, or a failure that says how to get it.
fn chromium() -> &'static str {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|output| output.status.success());
    assert!(found, "chromium is missing: install chromium (apt-get install chromium) or run scripts/test");
    "chromium"
}

/// Runs headless Chromium on `url` with `args`; its own profile directory,
/// so parallel runs do not share one.
fn browse(profile: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=2000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
fn a_browser_watches_a_sandbox_deal_complete_on_the_observers_page() {
    chromium();
    let dir = tempfile::tempdir().unwrap();
    ok(&interlock(&["sandbox", "up", "--dir", "sb", "--manual-accept"], dir.path()));
    let _sandbox = Sandbox(dir.path().to_owned());
    let web = web_address(dir.path());

    // The buyer proposes, naming the observer; the page opens while the deal
    // waits for the seller, then the seller accepts and the deal runs.
    let view = propose_to_seller(
        dir.path(),
        &["--payment", "25 USD@alpha", "--delivery", "10 GOLD@beta", "--observer", "observer", "--window", "20"],
    );
    let deal = view["deal_id"].as_str().unwrap().trim_start_matches("0x").to_owned();
    let url = format!("http://{web}/deals/{deal}");
    let profile = dir.path().join("chromium");
    let mut seen_before = String::new();
    for _ in 0..40 {
        let dom = browse(&profile, &url, &["--dump-dom"]);
        seen_before = String::from_utf8_lossy(&dom.stdout).into_owned();
        if seen_before.contains("class=\"status proposed\"") || seen_before.contains("class=\"status registered\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(seen_before.contains("Timeline"), "the page did not load: {seen_before}");
    assert!(!seen_before.contains("class=\"status completed\""), "the deal completed before the seller accepted");
    ok(&interlock(&["deal", "--sandbox", "sb", "--as", "seller", "accept", &deal], dir.path()));

    let mut dom = String::new();
    for _ in 0..40 {
        let output = browse(&profile, &url, &["--dump-dom"]);
        dom = String::from_utf8_lossy(&output.stdout).into_owned();
        if dom.contains("class=\"status completed\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(dom.contains("class=\"status completed\""), "the page never showed the deal completed: {dom}");
    // The timeline drew each leg's steps on its network and the deadlines.
    for expected in ["executed", "reserved", "decision deadline", "alpha", "beta", "<svg"] {
        assert!(dom.contains(expected), "{expected:?} missing from the page: {dom}");
    }

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("observer-timeline.png");
    let _ = std::fs::remove_file(&png);
    let shot = browse(&profile, &url, &[&format!("--screenshot={}", png.display()), "--window-size=1280,900"]);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap_or_else(|error| panic!("no screenshot at {}: {error}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", png.display());
    assert!(bytes.len() > 20_000, "the screenshot is nearly empty: {} bytes", bytes.len());

    // A deal with an inspection period: once its legs are held, the page
    // counts the window down and draws its close among the deadlines.
    let args = ["--mode", "notary", "--inspect", "5m", "--observer", "observer", "--window", "20"];
    let view = propose_to_seller(
        dir.path(),
        &[&args[..], &["--payment", "5 USD@alpha", "--delivery", "1 GOLD@beta"]].concat(),
    );
    let deal = view["deal_id"].as_str().unwrap().trim_start_matches("0x").to_owned();
    ok(&interlock(&["deal", "--sandbox", "sb", "--as", "seller", "accept", &deal], dir.path()));
    let url = format!("http://{web}/deals/{deal}");
    let mut dom = String::new();
    for _ in 0..40 {
        dom = String::from_utf8_lossy(&browse(&profile, &url, &["--dump-dom"]).stdout).into_owned();
        if dom.contains("class=\"kind held\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    for expected in
        ["class=\"kind held\"", "Inspection", "closes in", "the buyer may dispute", "inspection window closes"]
    {
        assert!(dom.contains(expected), "{expected:?} missing from the page: {dom}");
    }
}
