//! A gateway restarted on a chain that grew by five thousand blocks while it
//! followed catches up from its saved cursor with a handful of node calls,
//! not a read of the chain from its start (the figures `bench follow` prints):
//! reading the chain again would take at least three log queries of the
//! follower's 2,000-block ranges.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_catches_up_from_its_cursor_with_a_handful_of_calls() {
    let report = interlock_devnet::follow_bench::run(5_000, &|_| {}).await.expect("the benchmark runs");
    assert!(report.head >= 5_010, "{report:?}");
    let logs = report.catch_up_rpc_calls_by_method.get("eth_getLogs").copied().unwrap_or(0);
    assert!(logs <= 2, "one log query covers the ten blocks mined while it was down: {report:?}");
    assert!(report.catch_up_rpc_calls <= 12, "{report:?}");
}
