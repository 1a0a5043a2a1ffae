//! `interlock sim`: the simulator over many seeds, and its totals.

pub fn run(seeds: u64, from: u64, trace: bool, json: bool) -> anyhow::Result<Result<(), u8>> {
    if trace {
        std::env::set_var("INTERLOCK_SIM_TRACE", "1");
    }
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let step = (seeds / 20).max(1);
    let progress = |_seed: u64| {
        let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if !json && finished.is_multiple_of(step) {
            eprintln!("  {finished} of {seeds} seeds passed ({:.0} s)", started.elapsed().as_secs_f64());
        }
    };
    match interlock_sim::run_seeds(from, seeds, &progress) {
        Ok(reports) => {
            let deals: usize = reports.iter().map(|r| r.deals).sum();
            let completed: usize = reports.iter().map(|r| r.completed).sum();
            let refunded: usize = reports.iter().map(|r| r.refunded).sum();
            let steps: usize = reports.iter().map(|r| r.steps).sum();
            let reorganisations: u64 = reports.iter().map(|r| r.reorganisations).sum();
            let deep_reorganisations: u64 = reports.iter().map(|r| r.deep_reorganisations).sum();
            let reorg_lost: usize = reports.iter().map(|r| r.reorg_lost).sum();
            let reorg_one_sided: usize = reports.iter().map(|r| r.reorg_one_sided).sum();
            let script_chains = reports.iter().filter(|r| r.script_chain_lag_ms.is_some()).count();
            let late_claims: u64 = reports.iter().map(|r| r.late_claims_sent).sum();
            let fees_paid: u128 = reports.iter().map(|r| r.fees_paid).sum();
            let fees_paid = u64::try_from(fees_paid).unwrap_or(u64::MAX);
            let spiky = reports.iter().filter(|r| r.fee_spikes > 0).count();
            let waited: u64 = reports.iter().map(|r| r.spends_waited).sum();
            let priced_out: u64 = reports.iter().map(|r| r.spends_priced_out).sum();
            let bumps: u64 = reports.iter().map(|r| r.fee_bumps).sum();
            let dust_refused: u64 = reports.iter().map(|r| r.dust_refused).sum();
            let fee_cap_exceeded: usize = reports.iter().map(|r| r.fee_cap_exceeded).sum();
            let fee_lost: usize = reports.iter().map(|r| r.fee_lost).sum();
            let fee_lost_seeds: Vec<u64> = reports.iter().filter(|r| r.fee_lost > 0).map(|r| r.seed).collect();
            let routed = reports.iter().filter(|r| r.routed).count();
            let relay_crashes: u64 = reports.iter().map(|r| r.relay_crashes).sum();
            let relayed: u64 = reports.iter().map(|r| r.relay_delivered).sum();
            let relay_duplicates: u64 = reports.iter().map(|r| r.relay_duplicates).sum();
            let inspected: usize = reports.iter().map(|r| r.inspected).sum();
            let disputed: usize = reports.iter().map(|r| r.disputed).sum();
            let released: usize = reports.iter().map(|r| r.released).sum();
            let reversed: usize = reports.iter().map(|r| r.reversed).sum();
            let disputes_refused: u64 = reports.iter().map(|r| r.disputes_refused).sum();
            let passed_on: u64 = reports.iter().map(|r| r.disputes_passed_on).sum();
            let seconds = started.elapsed().as_secs_f64();
            if json {
                let report = serde_json::json!({
                    "routed_seeds": routed, "relay_crashes": relay_crashes, "relayed_notifications": relayed,
                    "relay_duplicates": relay_duplicates,
                    "inspected": inspected, "disputed": disputed, "released": released, "reversed": reversed,
                    "disputes_refused": disputes_refused, "disputes_passed_on": passed_on,
                    "seeds": seeds, "from": from, "violations": 0, "deals": deals,
                    "completed": completed, "refunded": refunded, "steps": steps, "seconds": seconds,
                    "reorganisations": reorganisations, "deep_reorganisations": deep_reorganisations,
                    "reorg_lost": reorg_lost, "reorg_one_sided": reorg_one_sided,
                    "script_chain_seeds": script_chains, "late_claims_sent": late_claims,
                    "fee_spike_seeds": spiky, "fees_paid": fees_paid, "spends_waited": waited,
                    "spends_priced_out": priced_out, "fee_bumps": bumps, "dust_refused": dust_refused,
                    "fee_cap_exceeded": fee_cap_exceeded, "fee_lost": fee_lost, "fee_lost_seeds": fee_lost_seeds,
                });
                println!("{report}");
            } else {
                println!(
                    "{seeds} seeds from {from}: no invariant broken; {deals} deals ({completed} completed, {refunded} refunded), {steps} steps checked in {seconds:.1} s"
                );
                println!(
                    "reorganisations: {reorganisations}, {deep_reorganisations} of them deeper than the depth; \
                     {reorg_lost} deals lost a confirmed transaction the new chain could not redo, \
                     {reorg_one_sided} of them ended one-sided (atomicity is owed only where the chain keeps what it confirmed)"
                );
                println!(
                    "script chains: {script_chains} seeds ran beta as a UTXO chain (named keys only, claims after \
                     the expiry, median time behind the clock); adversaries sent {late_claims} late claims there"
                );
                println!(
                    "script-chain fees: {fees_paid} units paid out of legs ({spiky} seeds with fee spikes); \
                     {waited} spends waited for the market ({priced_out} priced out by their cap or leg), \
                     {bumps} raised by a child; {dust_refused} deals refused for a dust leg; {fee_cap_exceeded} deals \
                     had a claim priced out by its cap until its expiry, {fee_lost} of them ended one-sided, in seeds \
                     {fee_lost_seeds:?}"
                );
                println!(
                    "routed: {routed} seeds linked their gateways only through a relay, which crashed {relay_crashes} \
                     times; it brought keepers {relayed} tokens from the other network ({relay_duplicates} they had already)"
                );
                println!(
                    "inspection periods: {inspected} deals, {disputed} disputed, {released} released, {reversed} \
                     reversed; {disputes_refused} disputes refused (late, or by a party the policy does not name), \
                     {passed_on} passed on between notaries"
                );
            }
            Ok(Ok(()))
        }
        Err(violation) => {
            if json {
                let report = serde_json::json!({
                    "seeds": seeds, "from": from, "violations": 1,
                    "seed": violation.seed, "step": violation.step, "message": violation.message,
                });
                println!("{report}");
            } else {
                println!("{violation}");
            }
            Ok(Err(1))
        }
    }
}
