//! The simulator over many seeds: every invariant holds on every step.

/// Seeds the test suite runs; `INTERLOCK_SIM_SEEDS` raises it locally.
const SEEDS_DEFAULT: u64 = 1_000;

#[test]
fn a_thousand_seeds_keep_every_invariant() {
    let seeds = std::env::var("INTERLOCK_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_DEFAULT);
    let reports = interlock_sim::run_seeds(0, seeds, &|_| {}).unwrap_or_else(|violation| panic!("{violation}"));
    assert_eq!(reports.len() as u64, seeds);
    let completed: usize = reports.iter().map(|r| r.completed).sum();
    let refunded: usize = reports.iter().map(|r| r.refunded).sum();
    // The seeds must exercise both endings, or they prove little.
    assert!(completed > 0 && refunded > 0, "completed {completed}, refunded {refunded}");
    // About half the seeds run their second network with deep-chain semantics
    // (whole-second blocks, events seen only at a confirmation depth of 1 to 4);
    // they too must reach both endings, at more than one depth.
    let deep: Vec<_> = reports.iter().filter(|r| r.deep_chain_depth.is_some()).collect();
    let deep_completed: usize = deep.iter().map(|r| r.completed).sum();
    let deep_refunded: usize = deep.iter().map(|r| r.refunded).sum();
    assert!(deep.len() as u64 >= seeds / 4, "{} of {seeds} seeds had a deep-chain network", deep.len());
    assert!(
        deep_completed > 0 && deep_refunded > 0,
        "deep-chain seeds: completed {deep_completed}, refunded {deep_refunded}"
    );
    let depths: std::collections::BTreeSet<u64> = deep.iter().filter_map(|r| r.deep_chain_depth).collect();
    assert!(depths.len() > 1, "depths drawn: {depths:?}");
    // Some of them reorganise, shallower than their depth, again and again,
    // and still end their deals both ways.
    let reorganised: Vec<_> = deep.iter().filter(|r| r.reorganisations > 0).collect();
    let reorganisations: u64 = reorganised.iter().map(|r| r.reorganisations).sum();
    assert!(reorganised.len() as u64 >= seeds / 20, "{} seeds reorganised", reorganised.len());
    assert!(reorganisations >= seeds / 4, "{reorganisations} reorganisations in {seeds} seeds");
    let (completed, refunded) = reorganised.iter().fold((0, 0), |(c, r), s| (c + s.completed, r + s.refunded));
    assert!(completed > 0 && refunded > 0, "reorganised seeds: completed {completed}, refunded {refunded}");
    // Some reach deeper than the depth, taking away blocks the parties and
    // notaries acted on: the parties go back with the chain and their deals
    // still end both ways. A deal is excused from atomicity only when the new
    // chain could not do again what the dropped blocks did; count them.
    let deep_reorged: Vec<_> = reorganised.iter().filter(|r| r.deep_reorganisations > 0).collect();
    let deep_reorganisations: u64 = deep_reorged.iter().map(|r| r.deep_reorganisations).sum();
    let lost: usize = deep_reorged.iter().map(|r| r.reorg_lost).sum();
    let one_sided: usize = deep_reorged.iter().map(|r| r.reorg_one_sided).sum();
    let taken: u64 = deep_reorged.iter().map(|r| r.events_taken).sum();
    let deals: usize = deep_reorged.iter().map(|r| r.deals).sum();
    let (completed, refunded) = deep_reorged.iter().fold((0, 0), |(c, r), s| (c + s.completed, r + s.refunded));
    println!(
        "{} seeds with {deep_reorganisations} reorganisations deeper than the depth, taking {taken} confirmed escrow events away: {deals} deals, \
         {completed} completed, {refunded} refunded; {lost} had a dropped transaction the new chain did not redo, \
         {one_sided} of them ended one-sided",
        deep_reorged.len()
    );
    assert!(deep_reorged.len() as u64 >= seeds / 50, "{} seeds reorganised past the depth", deep_reorged.len());
    assert!(taken >= seeds / 20, "deep reorganisations took only {taken} confirmed escrow events away");
    assert!(completed > 0 && refunded > 0, "deeply reorganised seeds: completed {completed}, refunded {refunded}");
    assert!(lost * 4 <= deals, "{lost} of {deals} deals lost to deep reorganisations");
    // About a third run beta as a script chain (only named keys spend, claims
    // taken after the expiry, lapsed legs judged by a lagging median time):
    // their deals too end both ways.
    let script: Vec<_> = reports.iter().filter(|r| r.script_chain_lag_ms.is_some()).collect();
    let (completed, refunded) = script.iter().fold((0, 0), |(c, r), s| (c + s.completed, r + s.refunded));
    assert!(script.len() as u64 >= seeds / 5, "{} of {seeds} seeds had a script chain", script.len());
    assert!(completed > 0 && refunded > 0, "script-chain seeds: completed {completed}, refunded {refunded}");
    // There every spend pays its fee out of the leg, under a market that
    // spikes in most of them: some spends wait for it, some are raised by a
    // child, and a few deals are refused for a dust leg before anything is
    // reserved. The checker holds every unit of every fee to account.
    let paid: Vec<_> = script.iter().filter(|r| r.fees_paid > 0).collect();
    let waited: Vec<_> = script.iter().filter(|r| r.spends_waited > 0).collect();
    let bumps: u64 = script.iter().map(|r| r.fee_bumps).sum();
    let dust: u64 = script.iter().map(|r| r.dust_refused).sum();
    let fee_lost: Vec<u64> = script.iter().filter(|r| r.fee_lost > 0).map(|r| r.seed).collect();
    println!(
        "{} script-chain seeds paid fees, {} had spends wait for the market; {bumps} children raised a spend, \
         {dust} deals refused for dust, deals lost to a claim priced out by its cap in seeds {fee_lost:?}",
        paid.len(),
        waited.len()
    );
    assert!(paid.len() * 10 >= script.len() * 9, "{} of {} script-chain seeds paid fees", paid.len(), script.len());
    assert!(waited.len() as u64 >= seeds / 20, "{} script-chain seeds had spends wait for the market", waited.len());
    assert!(bumps > 0 && dust > 0, "bumps {bumps}, dust refusals {dust}");
    // About a fifth link their gateways only through a relay that crashes,
    // delays, reorders and duplicates the notifications keepers act on: their
    // deals end both ways too, and the keepers did learn tokens through it.
    let routed: Vec<_> = reports.iter().filter(|r| r.routed).collect();
    let (completed, refunded) = routed.iter().fold((0, 0), |(c, r), s| (c + s.completed, r + s.refunded));
    let crashes: u64 = routed.iter().map(|r| r.relay_crashes).sum();
    let relayed: u64 = routed.iter().map(|r| r.relay_delivered).sum();
    let duplicates: u64 = routed.iter().map(|r| r.relay_duplicates).sum();
    println!(
        "{} routed seeds: relay crashed {crashes} times, brought {relayed} tokens ({duplicates} already known)",
        routed.len()
    );
    assert!(routed.len() as u64 >= seeds / 10, "{} of {seeds} seeds were routed", routed.len());
    assert!(completed > 0 && refunded > 0, "routed seeds: completed {completed}, refunded {refunded}");
    assert!(
        crashes > 0 && relayed > 0 && duplicates > 0,
        "crashes {crashes}, relayed {relayed}, duplicates {duplicates}"
    );
    // Some notary-mode deals hold their legs for an inspection period: some
    // are disputed in time (and wait for the operators), some too late or by
    // a party the policy does not name (refused), and every one ends
    // released or reversed, both legs alike, under crashes and lost messages.
    let inspected: usize = reports.iter().map(|r| r.inspected).sum();
    let disputed: usize = reports.iter().map(|r| r.disputed).sum();
    let released: usize = reports.iter().map(|r| r.released).sum();
    let reversed: usize = reports.iter().map(|r| r.reversed).sum();
    let refused: u64 = reports.iter().map(|r| r.disputes_refused).sum();
    let passed_on: u64 = reports.iter().map(|r| r.disputes_passed_on).sum();
    println!(
        "{inspected} deals with an inspection period: {disputed} disputed, {released} released, {reversed} reversed; \
         {refused} disputes refused, {passed_on} passed on between notaries"
    );
    assert!(inspected as u64 >= seeds / 4, "{inspected} inspected deals in {seeds} seeds");
    assert!(disputed > 0 && released > 0 && reversed > 0 && refused > 0, "inspection seeds explored too little");
    assert!(passed_on > 0, "no notary passed a dispute on");
}

#[test]
fn a_seed_replays_identically() {
    let first = interlock_sim::run_seed(42).expect("seed 42 passes");
    let second = interlock_sim::run_seed(42).expect("seed 42 passes");
    assert_eq!(first.steps, second.steps);
    assert_eq!((first.completed, first.refunded), (second.completed, second.refunded));
}
