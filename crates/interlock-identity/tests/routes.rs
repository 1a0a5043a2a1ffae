//! Links between gateways and the routes ranked over them.

use interlock_core::{NetworkId, PartyKey};
use interlock_identity::{Directory, GatewayEntry, GatewayLink, IdentityError, NetworkEntry, ROUTE_NETWORKS_MAX};

fn id(n: u64) -> NetworkId {
    NetworkId(n)
}

/// Networks 1..=count, each with a gateway, linked as `links` say (None: a full mesh).
fn directory(count: u64, links: Option<Vec<(u64, u64, u32)>>) -> Directory {
    let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    let name = |n: u64| names[usize::try_from(n - 1).unwrap()].to_owned();
    Directory {
        networks: (1..=count)
            .map(|n| NetworkEntry { id: id(n), name: name(n), platform: "ledger".into(), config: Default::default() })
            .collect(),
        gateways: (1..=count)
            .map(|n| GatewayEntry {
                name: format!("gw-{}", name(n)),
                network: id(n),
                endpoint: format!("127.0.0.1:{}", 7000 + n),
                key: PartyKey::from_seed([u8::try_from(n).unwrap(); 32]).public(),
            })
            .collect(),
        links: links.map(|links| {
            links.into_iter().map(|(a, b, preference)| GatewayLink { networks: [id(a), id(b)], preference }).collect()
        }),
        ..Directory::default()
    }
}

fn paths(directory: &Directory, from: u64, to: u64) -> Vec<(Vec<u64>, u64)> {
    directory
        .routes(id(from), id(to), 8)
        .into_iter()
        .map(|route| (route.networks.iter().map(|n| n.0).collect(), route.preference))
        .collect()
}

#[test]
fn routes_rank_fewest_hops_then_preference() {
    // alpha - beta - gamma, and alpha - delta - gamma (preferred less), and
    // a longer way round through epsilon.
    let links = vec![(1, 2, 0), (2, 3, 3), (1, 4, 0), (4, 3, 1), (1, 5, 0), (5, 4, 0)];
    let directory = directory(5, Some(links));
    directory.validate().unwrap();
    assert_eq!(
        paths(&directory, 1, 3),
        vec![(vec![1, 4, 3], 1), (vec![1, 2, 3], 3), (vec![1, 5, 4, 3], 1)],
        "two hops before three; among two, the lower preference"
    );
    assert_eq!(paths(&directory, 3, 1)[0], (vec![3, 4, 1], 1), "a link serves both ways");
    assert!(directory.linked(id(1), id(2)) && directory.linked(id(2), id(1)));
    assert!(!directory.linked(id(1), id(3)), "alpha and gamma are joined only through relays");
    assert_eq!(directory.neighbours(id(4)), vec![id(1), id(3), id(5)]);
    assert_eq!(directory.routes(id(1), id(3), 1).len(), 1, "--most bounds the list");
}

#[test]
fn a_network_no_link_reaches_has_no_route() {
    let directory = directory(4, Some(vec![(1, 2, 0), (2, 3, 0)]));
    directory.validate().unwrap();
    assert_eq!(paths(&directory, 1, 3), vec![(vec![1, 2, 3], 0)]);
    assert!(paths(&directory, 1, 4).is_empty(), "delta is linked to nobody");
    assert!(paths(&directory, 1, 1).is_empty(), "no route from a network to itself");
}

#[test]
fn without_links_every_gateway_calls_every_other_directly() {
    let directory = directory(3, None);
    directory.validate().unwrap();
    let routes = paths(&directory, 1, 3);
    assert_eq!(routes[0], (vec![1, 3], 0), "the direct call first");
    assert_eq!(routes[1..], [(vec![1, 2, 3], 0)], "then through the third gateway");
    let json = serde_json::to_string(&directory).unwrap();
    assert!(!json.contains("links"), "a directory without links writes (and signs) as before links existed: {json}");
}

#[test]
fn routes_never_pass_more_networks_than_the_limit() {
    // A line of ten networks: the far end is beyond the limit.
    let line: Vec<(u64, u64, u32)> = (1..10).map(|n| (n, n + 1, 0)).collect();
    let directory = directory(10, Some(line));
    let reachable = u64::try_from(ROUTE_NETWORKS_MAX).unwrap();
    assert_eq!(paths(&directory, 1, reachable)[0].0.len(), ROUTE_NETWORKS_MAX);
    assert!(paths(&directory, 1, reachable + 1).is_empty());
}

#[test]
fn bad_links_are_refused_naming_the_link() {
    let cases = [
        (vec![(1, 1, 0)], "link 1 - 1: expected two different networks"),
        (vec![(1, 9, 0)], "link 1 - 9 names network 9 which has no gateway"),
        (vec![(1, 2, 0), (2, 1, 4)], "link 2 - 1 is listed twice"),
    ];
    for (links, expected) in cases {
        let error = directory(3, Some(links)).validate().unwrap_err();
        let IdentityError::InvalidDirectory { problem } = &error else { panic!("{error:?}") };
        assert!(problem.contains(expected), "{problem:?} should say {expected:?}");
    }
}
