//! Failures that repeat, logged once: while a peer is down, every task that
//! talks to it fails every few hundred milliseconds, and a log with one line
//! per failure buries the one line that says what is wrong. [`Repeated`]
//! lets the first failure of a kind through (the caller's line names the
//! address), then holds the rest back and lets one line through per
//! [`REPEAT_LOG_INTERVAL`] saying how many it held, and one when the failures
//! stop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per kind of failure in this interval.
pub const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Kinds of failure tracked at once; past it the oldest are forgotten (and
/// their next failure is logged as a first one).
pub const REPEATED_KINDS_MAX: usize = 1_024;

#[derive(Debug)]
struct Failing {
    logged_at: Instant,
    held_back: u64,
}

/// The failures of each kind (a peer's address, usually) since it last worked.
#[derive(Debug, Default)]
pub struct Repeated {
    failing: Mutex<HashMap<String, Failing>>,
}

impl Repeated {
    pub fn new() -> Repeated {
        Repeated::default()
    }

    /// A failure of `kind` at `now`: the line to log, or `None` when it
    /// repeats one logged less than [`REPEAT_LOG_INTERVAL`] ago.
    pub fn failed(&self, kind: &str, message: &str, now: Instant) -> Option<String> {
        let mut failing = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match failing.get_mut(kind) {
            Some(entry) if now.duration_since(entry.logged_at) < REPEAT_LOG_INTERVAL => {
                entry.held_back += 1;
                None
            }
            Some(entry) => {
                let line = format!("{message} (and {} more times since the last line)", entry.held_back);
                *entry = Failing { logged_at: now, held_back: 0 };
                Some(line)
            }
            None => {
                if failing.len() >= REPEATED_KINDS_MAX {
                    let oldest = failing.iter().min_by_key(|(_, entry)| entry.logged_at).map(|(kind, _)| kind.clone());
                    failing.remove(&oldest.expect("a full map has an oldest entry"));
                }
                failing.insert(kind.to_owned(), Failing { logged_at: now, held_back: 0 });
                Some(message.to_owned())
            }
        }
    }

    /// `kind` works again: the line to log if it had failed.
    pub fn recovered(&self, kind: &str) -> Option<String> {
        let mut failing = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failing.remove(kind).map(|entry| format!("{kind} works again ({} failures held back)", entry.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_failures_is_one_line_then_one_per_interval() {
        let repeated = Repeated::new();
        let start = Instant::now();
        let lines: Vec<String> = (0..150)
            .filter_map(|i| {
                repeated.failed("gateway 127.0.0.1:1", "connect failed", start + Duration::from_millis(200 * i))
            })
            .collect();
        // 150 failures over 30 s: the first, then one when the interval has passed.
        assert_eq!(lines.len(), 1, "{lines:?}");
        let later = repeated.failed("gateway 127.0.0.1:1", "connect failed", start + REPEAT_LOG_INTERVAL * 2);
        assert_eq!(later.as_deref(), Some("connect failed (and 149 more times since the last line)"));
        // Another peer's failure is its own kind.
        assert!(repeated.failed("gateway 127.0.0.1:2", "connect failed", start).is_some());
        assert_eq!(
            repeated.recovered("gateway 127.0.0.1:1").as_deref(),
            Some("gateway 127.0.0.1:1 works again (0 failures held back)")
        );
        assert_eq!(repeated.recovered("gateway 127.0.0.1:1"), None);
        assert!(repeated.failed("gateway 127.0.0.1:1", "connect failed", start + REPEAT_LOG_INTERVAL * 2).is_some());
    }
}
