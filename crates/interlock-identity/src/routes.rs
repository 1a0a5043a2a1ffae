//! Which gateways peer with which, and the routes a gateway message takes
//! between two networks whose gateways are not linked directly.
//!
//! A directory without a `links` list is a full mesh: every gateway may call
//! every other, as before links existed. With one, a gateway calls only the
//! gateways it is linked to, and a message for any other network goes
//! through relays: the fewest hops first, then the lowest total preference,
//! then the lower network ids, so every gateway ranks the same routes the
//! same way.

use crate::directory::Directory;
use crate::error::{IdentityError, Result};
use interlock_core::NetworkId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most networks a route may pass through, the two ends included: a message
/// is never relayed more than `ROUTE_NETWORKS_MAX - 1` times.
pub const ROUTE_NETWORKS_MAX: usize = 8;
/// Most partial routes looked at while ranking routes: bounds the work on a
/// large, densely linked directory.
const PATHS_EXPLORED_MAX: usize = 4_096;

/// Two networks' gateways that may call each other, both ways.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayLink {
    /// The two networks, by id.
    pub networks: [NetworkId; 2],
    /// Lower is preferred among routes of as many hops (0 unless set).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preference: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// One way from a network to another: every network it passes, the two ends
/// included, and the sum of its links' preferences.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Route {
    pub networks: Vec<NetworkId>,
    pub preference: u64,
}

impl Route {
    /// The relays' and the destination's count: 1 for a direct link.
    pub fn hops(&self) -> usize {
        self.networks.len() - 1
    }

    /// The network a message on this route is handed to first.
    pub fn next_hop(&self) -> NetworkId {
        self.networks[1]
    }
}

impl Directory {
    /// Whether the gateways of `a` and `b` may call each other directly.
    pub fn linked(&self, a: NetworkId, b: NetworkId) -> bool {
        if a == b {
            return false;
        }
        match &self.links {
            None => self.gateway_for(a).is_some() && self.gateway_for(b).is_some(),
            Some(links) => links.iter().any(|link| link.networks == [a, b] || link.networks == [b, a]),
        }
    }

    /// The networks whose gateways `network`'s gateway may call directly.
    pub fn neighbours(&self, network: NetworkId) -> Vec<NetworkId> {
        self.adjacency().remove(&network).unwrap_or_default()
    }

    /// Every gateway's network with the networks it may call, each list
    /// sorted.
    fn adjacency(&self) -> BTreeMap<NetworkId, Vec<NetworkId>> {
        let served: BTreeSet<NetworkId> = self.gateways.iter().map(|entry| entry.network).collect();
        let mut adjacency: BTreeMap<NetworkId, Vec<NetworkId>> = BTreeMap::new();
        match &self.links {
            None => {
                for &network in &served {
                    adjacency.insert(network, served.iter().copied().filter(|&other| other != network).collect());
                }
            }
            Some(links) => {
                for link in links {
                    let [a, b] = link.networks;
                    if a != b && served.contains(&a) && served.contains(&b) {
                        adjacency.entry(a).or_default().push(b);
                        adjacency.entry(b).or_default().push(a);
                    }
                }
                for list in adjacency.values_mut() {
                    list.sort();
                    list.dedup();
                }
            }
        }
        adjacency
    }

    /// Up to `most` routes from `from` to `to`, best first (fewest hops, then
    /// lowest preference, then lowest network ids). Empty when no chain of
    /// links joins them within [`ROUTE_NETWORKS_MAX`] networks.
    pub fn routes(&self, from: NetworkId, to: NetworkId, most: usize) -> Vec<Route> {
        let mut found = Vec::new();
        if from == to || most == 0 {
            return found;
        }
        // Breadth first: every route of n hops is found before any of n + 1.
        let adjacency = self.adjacency();
        let mut queue = VecDeque::from([vec![from]]);
        let mut explored = 0;
        while let Some(path) = queue.pop_front() {
            explored += 1;
            if explored > PATHS_EXPLORED_MAX {
                break;
            }
            let last = *path.last().expect("a path starts with its origin");
            for &next in adjacency.get(&last).map_or(&[][..], Vec::as_slice) {
                if path.contains(&next) {
                    continue;
                }
                let mut longer = path.clone();
                longer.push(next);
                if next == to {
                    found.push(Route { preference: self.preference_of(&longer), networks: longer });
                } else if longer.len() < ROUTE_NETWORKS_MAX {
                    queue.push_back(longer);
                }
            }
        }
        found.sort_by(|a, b| {
            (a.networks.len(), a.preference, &a.networks).cmp(&(b.networks.len(), b.preference, &b.networks))
        });
        found.truncate(most);
        found
    }

    fn preference_of(&self, networks: &[NetworkId]) -> u64 {
        let Some(links) = &self.links else { return 0 };
        networks
            .windows(2)
            .map(|pair| {
                let link = links
                    .iter()
                    .find(|link| link.networks == [pair[0], pair[1]] || link.networks == [pair[1], pair[0]]);
                u64::from(link.map_or(0, |link| link.preference))
            })
            .sum()
    }

    /// Every link names two different networks the directory lists, each
    /// with a gateway, and no pair is linked twice.
    pub(crate) fn check_links(&self) -> Result<()> {
        let Some(links) = &self.links else { return Ok(()) };
        let mut seen = BTreeSet::new();
        for link in links {
            let [a, b] = link.networks;
            if a == b {
                return invalid(format!("link {} - {}: expected two different networks", a.0, b.0));
            }
            for network in [a, b] {
                if self.gateway_for(network).is_none() {
                    return invalid(format!(
                        "link {} - {} names network {} which has no gateway in the directory",
                        a.0, b.0, network.0
                    ));
                }
            }
            if !seen.insert((a.min(b), a.max(b))) {
                return invalid(format!("link {} - {} is listed twice: expected each pair once", a.0, b.0));
            }
        }
        Ok(())
    }
}

fn invalid<T>(problem: String) -> Result<T> {
    Err(IdentityError::InvalidDirectory { problem })
}
