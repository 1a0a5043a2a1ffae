//! `interlock bench core`: deals settled per second in process with both ledgers
//! on SQLite, memory per in-flight deal, and the machine's signature bound.

use crate::alloc;
use crate::runtime::Runtime;
use crate::setup::{self, code, now_ms, ALPHA, BETA};
use interlock_core::crypto::{decision_digest, NotaryKey, PartyKey, Secret};
use interlock_core::{Asset, DealId, DealTerms, Decision, Mode, Settlement};
use interlock_ledger::SqliteStore;
use serde_json::json;
use std::time::{Duration, Instant};

/// Notaries in a notary-mode bench deal, and how many must sign.
const NOTARIES: usize = 3;
const THRESHOLD: u8 = 2;
/// The throughput run's deals arrive in this many waves, one per round.
const WAVES: usize = 8;
/// Deals in flight for the memory measurement.
pub const INFLIGHT_DEALS: u32 = 100_000;
/// How long each signature rate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(700);

pub struct Options {
    pub deals: usize,
    pub mode: Mode,
    pub inflight: usize,
    pub json: bool,
}

/// Signature verifications one settled deal needs, (ed25519, secp256k1).
///
/// Hashlock: the parties check each other's terms signature (2) and the ledgers
/// check four transactions (reserve, reserve, execute, execute): 6 ed25519.
/// Notary, 2 of 3: the same 6, plus each notary checks both terms signatures
/// (6); each party recovers the 2 votes it needs and each ledger the 2
/// certificate signatures of its execution: 8 secp256k1.
pub fn signatures_per_deal(mode: Mode) -> (u64, u64) {
    match mode {
        Mode::Hashlock => (6, 0),
        Mode::Notary => (6 + 2 * NOTARIES as u64, 2 * u64::from(THRESHOLD) * 2),
    }
}

fn terms(runtime: &Runtime<SqliteStore>, mode: Mode, nonce: u64) -> (DealTerms, Option<Secret>) {
    let now = now_ms();
    let secret = Secret(blake(nonce));
    let settlement = match mode {
        Mode::Hashlock => Settlement::Hashlock {
            hash: secret.hash(),
            delivery_expiry_ms: now + 600_000,
            payment_expiry_ms: now + 900_000,
            margin_ms: 300_000,
        },
        Mode::Notary => Settlement::Notary {
            notaries: runtime.notary_addresses(),
            threshold: THRESHOLD,
            decision_deadline_ms: now + 600_000,
            backstop_expiry_ms: now + 900_000,
        },
    };
    let (payment, delivery) =
        (Asset::Fungible { code: code("USD"), amount: 3 }, Asset::Fungible { code: code("GOLD"), amount: 2 });
    let (buyer, seller) = (runtime.buyer().public(), runtime.seller().public());
    let terms = DealTerms { nonce, ..DealTerms::swap(buyer, seller, (ALPHA, payment), (BETA, delivery), settlement) };
    (terms, (mode == Mode::Hashlock).then_some(secret))
}

/// A distinct 32-byte secret per deal (the bench needs no unpredictability).
fn blake(nonce: u64) -> [u8; 32] {
    interlock_core::Hash32::sha256(&[b"bench secret", &nonce.to_be_bytes()]).0
}

fn world(dir: &std::path::Path, deals: usize) -> anyhow::Result<Runtime<SqliteStore>> {
    let amount = u128::try_from(deals).expect("fits") * 10;
    let funding = setup::Funding { buyer_usd_on_alpha: amount, seller_gold_on_beta: amount, seller_titles_on_beta: 0 };
    let mut runtime = setup::world(dir, &funding, NOTARIES)?;
    runtime.quiet();
    Ok(runtime)
}

fn add_deals(
    runtime: &mut Runtime<SqliteStore>,
    mode: Mode,
    first: usize,
    count: usize,
) -> anyhow::Result<Vec<DealId>> {
    // Agreed a batch at a time, as they would arrive: the terms waiting to be
    // added are not counted as deals in flight.
    let mut ids = Vec::with_capacity(count);
    for start in (first..first + count).step_by(AGREED_AT_ONCE) {
        let deals = (start..(start + AGREED_AT_ONCE).min(first + count))
            .map(|nonce| {
                let (terms, secret) = terms(runtime, mode, u64::try_from(nonce).expect("fits"));
                (terms, secret, false)
            })
            .collect();
        ids.extend(runtime.add_deals(deals)?);
    }
    Ok(ids)
}

/// How many deals the bench hands the runtime at once.
const AGREED_AT_ONCE: usize = 4_096;

/// Settles `deals` deals arriving in waves, one wave per round, so that both
/// networks have work in every round as they would under steady traffic; returns
/// the seconds from the first agreement to the last settlement.
fn throughput(mode: Mode, deals: usize, progress: bool) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new().prefix("interlock-bench-").tempdir()?;
    let mut runtime = world(dir.path(), deals)?;
    let wave = deals.div_ceil(WAVES).max(1);
    let started = Instant::now();
    let mut added = 0;
    let mut rounds = 0;
    while added < deals || !runtime.all_finished() {
        if added < deals {
            let count = wave.min(deals - added);
            add_deals(&mut runtime, mode, added, count)?;
            added += count;
        }
        runtime.round(now_ms())?;
        rounds += 1;
        if progress {
            eprintln!("  round {rounds}: {} of {deals} deals settled", runtime.finished_count());
        }
        anyhow::ensure!(rounds < 100 + WAVES, "deals did not settle within {} rounds", 100 + WAVES);
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Live heap bytes per deal with `count` deals in flight (both legs reserved).
fn memory_per_deal(mode: Mode, count: usize) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new().prefix("interlock-bench-").tempdir()?;
    let mut runtime = world(dir.path(), count)?;
    let baseline = alloc::live_bytes();
    alloc::reset_peak();
    add_deals(&mut runtime, mode, 0, count)?;
    // Until every deal's legs are reserved, none executed yet: notary-mode
    // parties reserve together (one round), hashlock ones one after the other.
    let rounds = if mode == Mode::Notary { 1 } else { 2 };
    for _ in 0..rounds {
        runtime.round(now_ms())?;
    }
    let peak = alloc::peak_bytes().saturating_sub(baseline);
    Ok(peak as f64 / count as f64)
}

/// Verifications per second on all cores; `verify(i)` checks the i-th of a pool
/// of distinct signatures, as real traffic would.
fn rate(verify: impl Fn(usize) -> bool + Sync) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let verify = &verify;
                scope.spawn(move || {
                    let mut count = 0u64;
                    while started.elapsed() < RATE_WINDOW {
                        for _ in 0..16 {
                            let index = usize::try_from(count).unwrap_or(0).wrapping_add(thread * 7919);
                            assert!(verify(index), "a valid signature verifies");
                            count += 1;
                        }
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("rate threads do not panic")).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// Distinct signatures the rates rotate through.
const SIGNATURE_POOL: usize = 256;

/// (ed25519 verifications/s, secp256k1 recoveries/s) on all cores, each over
/// distinct keys and messages.
fn signature_rates() -> (f64, f64) {
    let deals: Vec<DealId> = (0..SIGNATURE_POOL as u64)
        .map(|i| DealId(interlock_core::Hash32::sha256(&[b"bench", &i.to_be_bytes()])))
        .collect();
    let parties: Vec<(PartyKey, interlock_core::crypto::Ed25519Signature)> = deals
        .iter()
        .enumerate()
        .map(|(i, deal)| {
            let key = PartyKey::from_seed(interlock_core::Hash32::sha256(&[b"party", &i.to_be_bytes()]).0);
            let signature = key.sign_deal(*deal);
            (key, signature)
        })
        .collect();
    let party_ids: Vec<_> = parties.iter().map(|(key, _)| key.public()).collect();
    let ed25519 = rate(|i| {
        let i = i % SIGNATURE_POOL;
        interlock_core::crypto::verify_deal_signature(party_ids[i], deals[i], &parties[i].1).is_ok()
    });
    let notaries: Vec<(NotaryKey, [u8; 32], interlock_core::crypto::Vote)> = deals
        .iter()
        .enumerate()
        .map(|(i, deal)| {
            let seed = interlock_core::Hash32::sha256(&[b"notary", &i.to_be_bytes()]).0;
            let key = NotaryKey::from_seed(seed).expect("a hash is a valid scalar with overwhelming probability");
            let vote = key.sign_decision(*deal, Decision::Commit);
            (key, decision_digest(*deal, Decision::Commit), vote)
        })
        .collect();
    let addresses: Vec<_> = notaries.iter().map(|(key, _, _)| key.address()).collect();
    let secp256k1 = rate(|i| {
        let i = i % SIGNATURE_POOL;
        notaries[i].2.signature.recover(&notaries[i].1) == Some(addresses[i])
    });
    (ed25519, secp256k1)
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let say = |line: String| {
        if !options.json {
            eprintln!("{line}");
        }
    };
    say(format!("measuring signature verification rates on all cores ({:?} each)…", RATE_WINDOW));
    let (ed25519_per_s, secp256k1_per_s) = signature_rates();
    let (ed_per_deal, secp_per_deal) = signatures_per_deal(options.mode);
    let seconds_per_deal = ed_per_deal as f64 / ed25519_per_s + secp_per_deal as f64 / secp256k1_per_s;
    let bound_deals_per_s = 1.0 / seconds_per_deal;

    say(format!("settling {} {} deals through two SQLite ledgers…", options.deals, options.mode));
    let seconds = throughput(options.mode, options.deals, !options.json)?;
    let deals_per_s = options.deals as f64 / seconds;

    say(format!("holding {} deals in flight to measure memory…", options.inflight));
    let bytes_per_inflight_deal = memory_per_deal(options.mode, options.inflight)?;
    let ratio = deals_per_s / bound_deals_per_s;

    let report = json!({
        "mode": options.mode.to_string(),
        "deals": options.deals,
        "seconds": seconds,
        "deals_per_s": deals_per_s.round(),
        "bound_deals_per_s": bound_deals_per_s.round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "bytes_per_inflight_deal": bytes_per_inflight_deal.round(),
        "inflight_deals": options.inflight,
        "ed25519_verifications_per_s": ed25519_per_s.round(),
        "secp256k1_recoveries_per_s": secp256k1_per_s.round(),
        "ed25519_per_deal": ed_per_deal,
        "secp256k1_per_deal": secp_per_deal,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if options.json {
        println!("{report}");
    } else {
        println!("mode                      {}", options.mode);
        println!("deals settled             {} in {:.2} s", options.deals, seconds);
        println!("deals per second          {:.0}", deals_per_s);
        println!(
            "signature bound           {:.0} deals/s ({} ed25519 + {} secp256k1 per deal; {:.0} and {:.0} per second on {} cores)",
            bound_deals_per_s,
            ed_per_deal,
            secp_per_deal,
            ed25519_per_s,
            secp256k1_per_s,
            report["cores"]
        );
        println!("ratio to the bound        {:.2} (target 0.60)", ratio);
        println!(
            "memory per in-flight deal {:.0} bytes with {} in flight (target 4096)",
            bytes_per_inflight_deal, options.inflight
        );
    }
    Ok(())
}

pub struct SandboxOptions {
    pub deals: usize,
    pub concurrency: usize,
    pub mode: Mode,
    /// Pairs of networks the sandbox runs (each its own ledgers and gateways).
    pub pairs: usize,
    pub json: bool,
    /// Where the sandbox goes (default: a new temporary directory).
    pub dir: Option<std::path::PathBuf>,
}

/// The highest resident memory a process reached (`VmHWM`), in KiB.
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Deals through the multi-process sandbox (TLS, SQLite everywhere), against
/// the in-process figure measured first in the same run.
pub fn sandbox(options: &SandboxOptions) -> anyhow::Result<bool> {
    let say = |line: String| {
        if !options.json {
            eprintln!("{line}");
        }
    };
    say(format!("in process first: settling {} {} deals through two SQLite ledgers…", options.deals, options.mode));
    let core_deals_per_s = options.deals as f64 / throughput(options.mode, options.deals, false)?;
    let temporary = tempfile::Builder::new().prefix("interlock-bench-sandbox-").tempdir()?;
    let dir = options.dir.clone().unwrap_or_else(|| temporary.path().join("sandbox"));
    say(format!("starting a sandbox in {}…", dir.display()));
    // Its processes stop with this one, however it ends (Ctrl-C, timeout, kill).
    crate::sandbox::own_started_processes();
    crate::sandbox::up_quietly_as(&dir, &crate::sandbox::Topology::ledger_pairs(options.pairs)?)?;
    say(format!(
        "running {} {} deals, {} at a time, through the agents…",
        options.deals, options.mode, options.concurrency
    ));
    // The settlement path alone: the deals name no observer (an optional third
    // party that only reads), so the figure stays comparable across versions.
    let before = crate::role_costs::snapshot(&dir)?;
    let result = crate::sandbox::many(&dir, options.mode, options.deals, options.concurrency, false, true);
    let after = crate::role_costs::snapshot(&dir)?;
    let memory: serde_json::Map<String, serde_json::Value> = crate::sandbox::processes(&dir)?
        .into_iter()
        .map(|(name, pid)| (name, peak_memory_kib(pid).map_or(serde_json::Value::Null, Into::into)))
        .collect();
    crate::sandbox::down_quietly(&dir)?;
    let mut report = result?;
    let deals_per_s = report["deals_per_s"].as_f64().unwrap_or(0.0);
    let ratio = deals_per_s / core_deals_per_s;
    report["core_deals_per_s"] = core_deals_per_s.round().into();
    report["ratio_to_core"] = ((ratio * 1000.0).round() / 1000.0).into();
    report["peak_memory_kib"] = memory.into();
    report["per_deal"] = crate::role_costs::per_deal(&before, &after, options.deals as u64);
    report["cores"] = std::thread::available_parallelism().map_or(1, |n| n.get()).into();
    report["pairs"] = options.pairs.into();
    let atomic = report["not_atomic"] == 0;
    if options.json {
        println!("{report}");
    } else {
        println!("mode                  {}", options.mode);
        println!("deals                 {} ({} at a time)", options.deals, options.concurrency);
        println!("network pairs         {}", options.pairs);
        println!(
            "settled               {} completed, {} refunded, {} not atomic",
            report["completed"], report["refunded"], report["not_atomic"]
        );
        let target = if options.mode == Mode::Hashlock { 1_000 } else { 500 };
        println!("deals per second      {deals_per_s:.0} (target {target} in {} mode)", options.mode);
        println!(
            "latency               p50 {} ms, p99 {} ms (target p99 250 ms at concurrency 200)",
            report["latency_ms_p50"], report["latency_ms_p99"]
        );
        println!("in process            {core_deals_per_s:.0} deals/s; ratio {ratio:.2} (target 0.40)");
        println!("peak memory (KiB)     {}", report["peak_memory_kib"]);
        crate::role_costs::print(&report["per_deal"]);
    }
    Ok(atomic)
}
