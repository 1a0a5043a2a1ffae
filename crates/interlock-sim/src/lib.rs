//! Deterministic simulation of Interlock deals.
//!
//! A seed drives everything: the deals (mode, networks, assets, deadlines), the
//! faults (lost, delayed, duplicated and reordered messages; crashes and restarts
//! of parties, notaries, ledger sequencers and, on routed seeds, the relay
//! gateway that carries the keepers' notifications; a party absent across a deadline;
//! clock skew; an adversary sending transactions that must be refused) and the
//! order of events. Participants run the real core state machines and the real
//! ledger on the in-memory store. After every step [`checker::Checker`] asserts
//! the invariants of DESIGN.md §3; a failure names its seed, and the same seed
//! replays it exactly.

pub mod checker;
pub mod rng;
pub mod world;

use world::{World, LIVENESS_SLACK_MS, STEPS_MAX};

/// What one seed did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub deals: usize,
    pub steps: usize,
    pub completed: usize,
    pub refunded: usize,
    pub other: usize,
    /// The confirmation depth of the seed's deep-chain network, if it had one.
    pub deep_chain_depth: Option<u64>,
    /// How many times that network reorganised.
    pub reorganisations: u64,
    /// How many of those reached deeper than its depth.
    pub deep_reorganisations: u64,
    /// How many confirmed escrow events (reservations, executions,
    /// cancellations) those took away.
    pub events_taken: u64,
    /// Deals a deep reorganisation took a confirmed transaction from that
    /// the new chain did not do again before its deadline (atomicity is not
    /// owed to them).
    pub reorg_lost: usize,
    /// Of those, the deals that ended with one leg executed and the other not.
    pub reorg_one_sided: usize,
    /// The median time lag of the seed's script-chain network, if it had one.
    pub script_chain_lag_ms: Option<u64>,
    /// Claims an adversarial beneficiary sent there after a leg's expiry.
    pub late_claims_sent: u64,
    /// Fees the script chain's spends paid, in its smallest unit.
    pub fees_paid: u128,
    /// How many fee spikes its market had.
    pub fee_spikes: u64,
    /// Spends that waited at least one block for its fee market.
    pub spends_waited: u64,
    /// Of those, spends that waited at a market above the most their sender
    /// could pay.
    pub spends_priced_out: u64,
    /// Children sent to raise a waiting spend's fee.
    pub fee_bumps: u64,
    /// Deals the deal check refused for a dust leg there.
    pub dust_refused: u64,
    /// Deals one of whose hashlock claims there the market priced out by
    /// its sender's cap (or what the leg can pay) at every block from its
    /// sending until its leg's expiry: the stated assumption about fees
    /// failed for them.
    pub fee_cap_exceeded: usize,
    /// Of those, the deals that ended one-sided (atomicity is owed only
    /// where a party's cap is enough to get its claim mined in time).
    pub fee_lost: usize,
    /// The seed's gateways were linked only through a relay (`world::Relay`).
    pub routed: bool,
    /// How often that relay crashed.
    pub relay_crashes: u64,
    /// Notifications it brought a keeper that did not know the token yet.
    pub relay_delivered: u64,
    /// Notifications that keeper knew already (sent twice, or learnt on its own chain).
    pub relay_duplicates: u64,
    /// Deals with an inspection period; of them, those a notary recorded a
    /// dispute for, and those the keeper released or reversed.
    pub inspected: usize,
    pub disputed: usize,
    pub released: usize,
    pub reversed: usize,
    /// Disputes the notaries refused: after the window, or by a party the
    /// policy does not let dispute.
    pub disputes_refused: u64,
    /// Disputes the notaries passed on to one another (a disputer may send
    /// once, to one notary, and stop).
    pub disputes_passed_on: u64,
}

/// A broken invariant, with what replays it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("seed {seed} broke an invariant at step {step}: {message}\n  replay: interlock sim --from {seed} --seeds 1")]
pub struct Violation {
    pub seed: u64,
    pub step: usize,
    pub message: String,
}

/// Runs one seed to the end: faults until the last deadline, then a calm period
/// in which every deal must end.
pub fn run_seed(seed: u64) -> Result<SeedReport, Violation> {
    let mut world = World::new(seed);
    let violation = |world: &World, message: String| Violation { seed, step: world.step, message };
    let faults_until_ms = world.faults_until_ms;
    let end_ms = world.last_deadline_ms + LIVENESS_SLACK_MS;
    loop {
        let faults_on = world.now_ms < faults_until_ms;
        world.tick(faults_on).map_err(|message| violation(&world, message))?;
        if world.now_ms >= faults_until_ms && world.quiescent() {
            break;
        }
        if world.now_ms >= end_ms || world.step >= STEPS_MAX {
            world.finish().map_err(|message| violation(&world, message))?;
            return Err(violation(
                &world,
                "liveness: deals did not all end within the slack after the last deadline".into(),
            ));
        }
    }
    world.finish().map_err(|message| violation(&world, message))?;
    let mut report = SeedReport {
        seed,
        deals: world.deals.len(),
        steps: world.step,
        deep_chain_depth: world.deep_chain.as_ref().map(|deep| deep.depth),
        reorganisations: world.deep_chain.as_ref().map_or(0, |deep| deep.reorganisations),
        deep_reorganisations: world.deep_chain.as_ref().map_or(0, |deep| deep.deep_reorganisations),
        events_taken: world.deep_chain.as_ref().map_or(0, |deep| deep.events_taken),
        reorg_lost: world.deals.values().filter(|info| info.reorg_lost).count(),
        reorg_one_sided: world.deals.iter().filter(|(id, info)| info.reorg_lost && world.one_sided(**id)).count(),
        script_chain_lag_ms: world.script_chain.as_ref().map(|script| script.lag_ms),
        late_claims_sent: world.script_chain.as_ref().map_or(0, |script| script.late_claims_sent),
        fees_paid: world.checker.fees_paid(),
        fee_spikes: world.fees.as_ref().map_or(0, |fees| fees.spikes.len() as u64),
        spends_waited: world.fees.as_ref().map_or(0, |fees| fees.spends_waited),
        spends_priced_out: world.fees.as_ref().map_or(0, |fees| fees.priced_out),
        fee_bumps: world.fees.as_ref().map_or(0, |fees| fees.bumps),
        dust_refused: world.fees.as_ref().map_or(0, |fees| fees.dust_refused),
        fee_cap_exceeded: world.deals.values().filter(|info| info.fee_cap_exceeded).count(),
        fee_lost: world.deals.iter().filter(|(id, info)| info.fee_cap_exceeded && world.one_sided(**id)).count(),
        routed: world.relay.is_some(),
        relay_crashes: world.relay.as_ref().map_or(0, |relay| relay.crashes),
        relay_delivered: world.relay.as_ref().map_or(0, |relay| relay.delivered),
        relay_duplicates: world.relay.as_ref().map_or(0, |relay| relay.duplicates),
        inspected: world.inspected(),
        disputed: world.disputed(),
        released: world.verdicts_of(interlock_core::Decision::Release),
        reversed: world.verdicts_of(interlock_core::Decision::Reverse),
        disputes_refused: world.disputes_refused,
        disputes_passed_on: world.disputes_passed_on,
        ..SeedReport::default()
    };
    for ((_, party), outcome) in &world.outcomes {
        if *party != 0 {
            continue;
        }
        match outcome {
            interlock_core::saga::Outcome::Completed => report.completed += 1,
            interlock_core::saga::Outcome::Refunded => report.refunded += 1,
            _ => report.other += 1,
        }
    }
    Ok(report)
}

/// Runs seeds `from..from + count` on all cores; returns the reports in seed order
/// or the violation of the lowest failing seed.
pub fn run_seeds(from: u64, count: u64, progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<SeedReport>, Violation> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let next = std::sync::atomic::AtomicU64::new(from);
    let end = from + count;
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let result = std::panic::catch_unwind(|| run_seed(seed)).unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    Err(Violation { seed, step: 0, message: format!("panicked: {message}") })
                });
                let failed = result.is_err();
                results.lock().expect("no poisoning").push(result);
                progress(seed);
                if failed {
                    next.store(end, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no poisoning");
    results.sort_by_key(|r| match r {
        Ok(report) => report.seed,
        Err(violation) => violation.seed,
    });
    results.into_iter().collect()
}
