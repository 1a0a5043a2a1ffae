//! The authorisation matrix covers exactly the methods the services define,
//! and `docs/access.md` shows it as it is.

use interlock_rpc::access::{matrix_markdown, MATRIX};
use prost::Message as _;
use std::collections::BTreeSet;

/// Every `/package.Service/Method` path of the interlock.v1 services.
fn defined_paths() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(interlock_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut paths = BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                paths.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
            }
        }
    }
    paths
}

#[test]
fn every_method_of_every_service_has_exactly_one_rule() {
    let defined = defined_paths();
    assert!(defined.len() >= 29, "{defined:?}");
    let ruled: BTreeSet<String> =
        MATRIX.iter().map(|rule| rule.path.to_owned()).filter(|path| path.starts_with("/interlock.")).collect();
    let unruled: Vec<&String> = defined.difference(&ruled).collect();
    let stale: Vec<&String> = ruled.difference(&defined).collect();
    assert!(unruled.is_empty(), "methods no rule covers (closed to everyone): {unruled:?}");
    assert!(stale.is_empty(), "rules for methods no service defines: {stale:?}");
}

#[test]
fn the_reference_shows_the_matrix_as_it_is() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md");
    let docs = std::fs::read_to_string(path).unwrap();
    assert!(
        docs.contains(&matrix_markdown()),
        "docs/access.md does not show the matrix as it is; its table should read:\n{}",
        matrix_markdown()
    );
}
