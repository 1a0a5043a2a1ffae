//! `interlock demo --routed`: a deal between two networks whose gateways
//! cannot reach each other, in one process. It runs the routed sandbox (three
//! embedded ledgers, alpha's and gamma's gateways linked only to beta's) with
//! every role on a thread of this process — each with its own store files,
//! certificate and socket, every call gRPC over mutual TLS on loopback —
//! settles one hashlock and one notary deal between alpha and gamma, prints
//! the path every gateway message took (as its destination logged it), and
//! stops them all.

use crate::sandbox::{self, InProcess, OutputMoved, RunRole, Topology, ROLES_LOG};
use interlock_core::Mode;
use interlock_identity::SignedDirectory;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long the roles get to stop once interrupted.
const STOP_TIME_MAX: Duration = Duration::from_secs(10);

/// Runs the routed demo in `dir` (default: a new temporary directory), its
/// roles run by `run_role` (the binary's own command line); with `json`, one
/// JSON object at the end instead of the story. Returns whether both deals
/// completed on both sides.
pub fn run(dir: Option<PathBuf>, json: bool, run_role: RunRole) -> anyhow::Result<bool> {
    let temporary = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| temporary.path().join("sandbox"));
    std::fs::create_dir_all(dir.join("logs"))?;
    // A sandbox already there is refused by `up`; its state stays.
    let state = dir.join("sandbox.json");
    let written_here = !state.exists();
    let handled = HandledMessages::capture()?;
    let moved = OutputMoved::to(&dir.join("logs").join(ROLES_LOG))?;
    let mut terminal = moved.terminal()?;
    let mut story = Story { out: &mut terminal, json };
    story.say(format_args!(
        "starting three ledgers, their gateways, three notaries, two agents, an observer and a dependent \
         on threads of this process (pid {}), in {}",
        std::process::id(),
        dir.display()
    ))?;
    let roles = InProcess::new(run_role);
    let result = sandbox::up_in_process(&dir, &Topology::ROUTED, &roles)
        .and_then(|()| settle_and_show(&dir, &handled, &mut story));
    let (running, failures) = roles.stop(STOP_TIME_MAX);
    drop(moved);
    // Nothing of this sandbox runs any more: its directory can hold another.
    if written_here {
        let _ = std::fs::remove_file(&state);
    }
    for failure in &failures {
        eprintln!("warning: a role failed: {failure}");
    }
    if !running.is_empty() {
        eprintln!("warning: {} did not stop within {STOP_TIME_MAX:?}", running.join(", "));
    }
    result.map_err(|error| {
        let log = dir.join("logs").join(ROLES_LOG);
        anyhow::anyhow!("{error:#}\n(the roles' own output is in {})", log.display())
    })
}

/// A routed message as its destination gateway logged handling it.
struct Handled {
    destination: String,
    /// "routed KIND message ID handled, via A -> B"
    text: String,
}

/// The routed messages the gateways of this process handled, read from
/// their log events.
#[derive(Clone, Default)]
struct HandledMessages(Arc<Mutex<Vec<Handled>>>);

impl HandledMessages {
    /// Installs this process's log subscriber: every event to standard
    /// output (the roles' log) and the routed messages handled into the list.
    fn capture() -> anyhow::Result<HandledMessages> {
        use tracing_subscriber::layer::SubscriberExt as _;
        let handled = HandledMessages::default();
        let lines = tracing_subscriber::fmt::layer().with_target(false).with_ansi(false).with_writer(std::io::stdout);
        let level = tracing_subscriber::filter::LevelFilter::INFO;
        let subscriber = tracing_subscriber::registry().with(level).with(lines).with(handled.clone());
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| anyhow::anyhow!("this process logs elsewhere already: the demo cannot read its gateways"))?;
        Ok(handled)
    }

    fn take(&self) -> Vec<Handled> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HandledMessages {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message.starts_with("routed ") {
            let handled = Handled { destination: fields.destination, text: fields.message };
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(handled);
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    destination: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "destination" => self.destination = format!("{value:?}"),
            _ => {}
        }
    }
}

/// Where the demo's story goes: the terminal, line by line, unless it
/// reports as JSON at the end.
struct Story<'a> {
    out: &'a mut dyn Write,
    json: bool,
}

impl Story<'_> {
    fn say(&mut self, line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
        if self.json {
            return Ok(());
        }
        writeln!(self.out, "{line}")
    }
}

fn settle_and_show(dir: &Path, handled: &HandledMessages, story: &mut Story<'_>) -> anyhow::Result<bool> {
    let directory = SignedDirectory::load(&dir.join("directory.json"))?.directory;
    let name = |text: &str| -> String {
        let id = text.strip_prefix("network-").and_then(|id| id.parse::<u64>().ok());
        let entry = id.and_then(|id| directory.network(interlock_core::NetworkId(id)));
        entry.map_or_else(|| text.to_owned(), |entry| entry.name.clone())
    };
    let (alpha, gamma) = (crate::setup::ALPHA, crate::setup::GAMMA);
    story.say(format_args!("links: alpha - beta, beta - gamma; alpha's and gamma's gateways are not linked"))?;
    let mut routes = Vec::new();
    for route in directory.routes(alpha, gamma, 4) {
        let path: Vec<String> = route.networks.iter().map(|id| name(&id.to_string())).collect();
        story.say(format_args!("route alpha to gamma: {} ({} hops)", path.join(" -> "), route.hops()))?;
        routes.push(serde_json::json!({ "path": path, "hops": route.hops() }));
    }
    let (mut completed, mut deals) = (true, Vec::new());
    for mode in [Mode::Hashlock, Mode::Notary] {
        story.say(format_args!(""))?;
        let (done, report) = if story.json {
            sandbox::deal_to(dir, mode, true, &mut std::io::sink())?
        } else {
            sandbox::deal_to(dir, mode, false, story.out)?
        };
        completed &= done;
        deals.push(report);
    }
    story.say(format_args!(""))?;
    story.say(format_args!("gateway messages, as their destinations received them:"))?;
    let mut messages = Vec::new();
    for message in handled.take() {
        // "routed KIND message ID handled, via A -> B"
        let mut words = message.text.split_whitespace().skip(1);
        let (Some(kind), Some(_), Some(id)) = (words.next(), words.next(), words.next()) else { continue };
        let Some(via) = message.text.split("via ").nth(1) else { continue };
        let mut path: Vec<String> = via.split(" -> ").map(name).collect();
        path.push(name(&message.destination));
        story.say(format_args!("  {kind:<8} {}  (message {})", path.join(" -> "), &id[..id.len().min(12)]))?;
        messages.push(serde_json::json!({ "kind": kind, "path": path, "message": id }));
    }
    story.say(format_args!(""))?;
    let verdict = if completed { "both deals completed on both sides" } else { "a deal did not complete" };
    story.say(format_args!("{verdict}"))?;
    if story.json {
        let report = serde_json::json!({
            "pid": std::process::id(), "routes": routes, "deals": deals,
            "messages": messages, "completed": completed,
        });
        writeln!(story.out, "{report}")?;
    }
    Ok(completed)
}
