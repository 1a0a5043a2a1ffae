//! What the parser offers is what the commands take: client commands take no
//! server flags, and help texts list exactly the values the parser accepts.

use interlock_agent::store::DealState;
use std::process::{Command, Output};

fn interlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).output().unwrap()
}

fn help(command: &[&str]) -> String {
    let mut args = command.to_vec();
    args.push("--help");
    let output = interlock(&args);
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn only_the_service_roles_offer_and_take_the_metrics_flag() {
    for role in [["ledger"], ["gateway"], ["notary"], ["agent"]] {
        assert!(help(&role).contains("--metrics <ADDR>"), "{role:?} serves metrics");
    }
    let clients: [&[&str]; 6] = [
        &["sandbox", "status"],
        &["sandbox", "deal"],
        &["deal", "list"],
        &["deal", "propose"],
        &["observer", "verify"],
        &["ca", "issue"],
    ];
    for client in clients {
        assert!(!help(client).contains("--metrics"), "{client:?} is a client: it offers no --metrics");
    }
    let refused = interlock(&["sandbox", "status", "--dir", "nowhere", "--metrics", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected argument '--metrics'"), "{stderr}");
}

/// The "[possible values: ...]" list of `flag` in a help text.
fn possible_values(help: &str, flag: &str) -> Vec<String> {
    let at = help.find(flag).unwrap_or_else(|| panic!("no {flag} in {help}"));
    let rest = &help[at..];
    let start = rest.find("[possible values: ").unwrap_or_else(|| panic!("{flag} lists no values: {rest}"));
    let list = &rest[start + "[possible values: ".len()..];
    list[..list.find(']').unwrap()].split(", ").map(str::to_owned).collect()
}

#[test]
fn deal_list_help_names_every_state_the_agent_accepts_and_the_parser_takes_each() {
    let states: Vec<String> = DealState::ALL.iter().map(|state| state.as_str().to_owned()).collect();
    assert!(states.contains(&"windfall".to_owned()) && states.contains(&"lost".to_owned()));
    assert_eq!(possible_values(&help(&["deal", "list"]), "--state"), states);
    // Every listed state parses (the agent is unreachable, which comes after parsing) ...
    for state in &states {
        let output = interlock(&["deal", "--sandbox", "nowhere", "list", "--state", state]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("invalid value"), "{state}: {stderr}");
    }
    // ... and nothing else does.
    let output = interlock(&["deal", "--sandbox", "nowhere", "list", "--state", "finished"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'finished'"), "{stderr}");
}

#[test]
fn ca_issue_help_names_every_role_a_certificate_may_carry() {
    let roles: Vec<String> = interlock_identity::Role::ALL.iter().map(|role| role.as_str().to_owned()).collect();
    assert_eq!(possible_values(&help(&["ca", "issue"]), "--role"), roles);
}

#[test]
fn sandbox_up_refuses_an_evm_node_without_evm_and_three_evm_flags() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    for (args, says) in [
        (
            vec!["sandbox", "up", "--dir", at, "--evm-rpc", "http://127.0.0.1:8545"],
            "required arguments were not provided:\n  --evm",
        ),
        (vec!["sandbox", "up", "--dir", at, "--evm", "--evm", "--evm"], "--evm given 3 times"),
        (vec!["sandbox", "up", "--dir", at, "--evm", "--evm", "--evm-rpc", "http://127.0.0.1:8545"], "give one --evm"),
    ] {
        let output = interlock(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was started or written");
}
