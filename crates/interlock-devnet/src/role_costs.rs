//! What each process of a sandbox spends per settled deal: CPU seconds (its
//! `/proc` times), and from its own metrics endpoint the gRPC calls it
//! served, the storage transactions it synced and the signatures it checked.
//! Read before and after a run; the difference divided by the deals settled.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat`'s times (`CLK_TCK`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// One process's totals at one moment.
#[derive(Clone, Copy, Default, Debug)]
struct Sample {
    cpu_ticks: u64,
    grpc_calls: u64,
    durable_commits: u64,
    ed25519: u64,
    secp256k1: u64,
    /// Whether the metrics endpoint answered (a role without one has only CPU).
    measured: bool,
}

/// Every process's totals at one moment, by name.
pub struct Snapshot(BTreeMap<String, Sample>);

/// User and system time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesised name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The metrics address a process printed to its log (`metrics on ADDRESS`).
fn metrics_address(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix("metrics on "))?;
    Some(line.trim().to_owned())
}

/// `GET /metrics` from `address`, the body.
fn scrape(address: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer.split_once("\r\n\r\n")?.1.to_owned())
}

/// The totals of the counters this module reads, from a scrape.
fn read_counters(text: &str, sample: &mut Sample) {
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        // Counters are whole numbers, well within f64's exact range here.
        let value = value as u64;
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "interlock_grpc_calls_total" => sample.grpc_calls += value,
            "interlock_durable_commits_total" => sample.durable_commits += value,
            "interlock_signatures_checked_total" if series.contains("scheme=\"ed25519\"") => sample.ed25519 += value,
            "interlock_signatures_checked_total" if series.contains("scheme=\"secp256k1\"") => {
                sample.secp256k1 += value
            }
            _ => {}
        }
    }
}

/// The totals of every process of the sandbox in `dir` now.
pub fn snapshot(dir: &Path) -> anyhow::Result<Snapshot> {
    let mut samples = BTreeMap::new();
    for (name, pid) in crate::sandbox::processes(dir)? {
        let mut sample = Sample { cpu_ticks: cpu_ticks(pid).unwrap_or(0), ..Sample::default() };
        let log = dir.join("logs").join(format!("{name}.log"));
        if let Some(text) = metrics_address(&log).and_then(|address| scrape(&address)) {
            read_counters(&text, &mut sample);
            sample.measured = true;
        }
        samples.insert(name, sample);
    }
    Ok(Snapshot(samples))
}

fn per(value: u64, deals: u64) -> serde_json::Value {
    let per_deal = value as f64 / deals.max(1) as f64;
    ((per_deal * 1000.0).round() / 1000.0).into()
}

/// Each process's cost per deal between `before` and `after`, `deals` settled.
pub fn per_deal(before: &Snapshot, after: &Snapshot, deals: u64) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, end) in &after.0 {
        let start = before.0.get(name).copied().unwrap_or_default();
        let delta = |pick: fn(&Sample) -> u64| pick(end).saturating_sub(pick(&start));
        let cpu_s = delta(|s| s.cpu_ticks) as f64 / TICKS_PER_S / deals.max(1) as f64;
        let mut row = serde_json::json!({ "cpu_ms": (cpu_s * 1e5).round() / 100.0 });
        if end.measured {
            row["grpc_calls"] = per(delta(|s| s.grpc_calls), deals);
            row["durable_commits"] = per(delta(|s| s.durable_commits), deals);
            row["signatures_ed25519"] = per(delta(|s| s.ed25519), deals);
            row["signatures_secp256k1"] = per(delta(|s| s.secp256k1), deals);
        }
        out.insert(name.clone(), row);
    }
    out.into()
}

/// The per-deal table, one process a line.
pub fn print(costs: &serde_json::Value) {
    println!("per settled deal      process          cpu ms  grpc calls  commits  ed25519  secp256k1");
    let Some(rows) = costs.as_object() else { return };
    for (name, row) in rows {
        let cell = |key: &str| row.get(key).map_or_else(|| "-".to_owned(), ToString::to_string);
        println!(
            "                      {name:<16} {:>6}  {:>10}  {:>7}  {:>7}  {:>9}",
            cell("cpu_ms"),
            cell("grpc_calls"),
            cell("durable_commits"),
            cell("signatures_ed25519"),
            cell("signatures_secp256k1")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_exposition_text() {
        let text = "# HELP interlock_grpc_calls gRPC calls\n\
                    interlock_grpc_calls_total{method=\"/a\"} 3\n\
                    interlock_grpc_calls_total{method=\"/b\"} 4\n\
                    interlock_durable_commits_total 9\n\
                    interlock_signatures_checked_total{scheme=\"ed25519\"} 12\n\
                    interlock_signatures_checked_total{scheme=\"secp256k1\"} 2\n\
                    interlock_deal_events_total{role=\"agent\",event=\"completed\"} 5\n# EOF\n";
        let mut sample = Sample::default();
        read_counters(text, &mut sample);
        assert_eq!((sample.grpc_calls, sample.durable_commits, sample.ed25519, sample.secp256k1), (7, 9, 12, 2));
    }
}
