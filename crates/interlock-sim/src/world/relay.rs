//! Seeds whose two networks' gateways are linked only through a relay
//! gateway (the routed topology of the directory's links). What a network's
//! keeper learns of a token revealed on the other network reaches it as a
//! gateway notification, carried through the relay: the origin gateway keeps
//! it (a durable outbox) until the relay takes it; the relay keeps what it
//! took (durably) across its crashes, delays each message on its own (so
//! they arrive reordered), sometimes sends one twice, and hands it to the
//! keeper only while the keeper's ledger process is up. Without a relay the
//! keepers learn a token as soon as it is on chain, as before. The
//! invariants are the same: a relay may delay a keeper, never split a deal.

use super::World;
use crate::rng::Rng;
use interlock_core::crypto::Token;
use interlock_core::DealId;
use std::collections::HashMap;

/// Seeds with a relay, per mille (never with a script chain, which has no keeper).
pub(super) const ROUTED_PER_MILLE: u64 = 300;

/// One notification on its way to the keeper of ledger `to`.
#[derive(Clone, Debug)]
struct Mail {
    to: usize,
    deal_id: DealId,
    token: Token,
    at_ms: u64,
}

/// The relay gateway and what each keeper learnt through it.
pub struct Relay {
    rng: Rng,
    up: bool,
    down_until_ms: u64,
    /// Held by the origin gateways until the relay takes them.
    outbox: Vec<Mail>,
    /// Taken on by the relay: survives its crashes.
    held: Vec<Mail>,
    /// The tokens each ledger's keeper learnt, by ledger index.
    known: [HashMap<DealId, Token>; 2],
    pub crashes: u64,
    pub delivered: u64,
    pub duplicates: u64,
}

impl Relay {
    pub(super) fn new(seed: u64) -> Relay {
        Relay {
            rng: Rng::new(seed ^ 0x0052_454c_4159_0000),
            up: true,
            down_until_ms: 0,
            outbox: Vec::new(),
            held: Vec::new(),
            known: [HashMap::new(), HashMap::new()],
            crashes: 0,
            delivered: 0,
            duplicates: 0,
        }
    }

    /// Whether the seed is routed.
    pub(super) fn drawn(seed: u64, script_chain: bool) -> bool {
        !script_chain && Rng::new(seed ^ 0x0052_4f55_5445_0000).chance(ROUTED_PER_MILLE)
    }

    /// The token the keeper of ledger `index` knows for `deal_id`.
    pub(super) fn known(&self, index: usize, deal_id: &DealId) -> Option<&Token> {
        self.known[index].get(deal_id)
    }
}

impl Relay {
    /// A token revealed on ledger `index` at `now_ms`: its own keeper knows
    /// it at once, the other network's once the relay brings it.
    pub(super) fn revealed_on(&mut self, index: usize, deal_id: DealId, token: &Token, now_ms: u64, delay_max_ms: u64) {
        self.known[index].entry(deal_id).or_insert_with(|| token.clone());
        let at_ms = now_ms + self.rng.range(1, delay_max_ms);
        self.outbox.push(Mail { to: 1 - index, deal_id, token: token.clone(), at_ms });
    }
}

impl World {
    /// Moves the relay's mail on by one step: crashes and restarts, what the
    /// origins hand it, what it hands the keepers.
    pub(super) fn step_relay(&mut self, faults_on: bool) {
        let (now_ms, delay_max_ms, crash_per_mille) =
            (self.now_ms, self.faults.delay_max_ms, self.faults.crash_per_mille);
        let keepers_up = [self.ledgers[0].ledger.is_some(), self.ledgers[1].ledger.is_some()];
        let Some(relay) = self.relay.as_mut() else { return };
        if !relay.up && now_ms >= relay.down_until_ms {
            relay.up = true;
        }
        if relay.up && faults_on && relay.rng.chance(crash_per_mille) {
            relay.up = false;
            relay.crashes += 1;
            relay.down_until_ms = now_ms + relay.rng.range(50, 3_000);
        }
        if !relay.up {
            return;
        }
        let (due, later): (Vec<Mail>, Vec<Mail>) = relay.outbox.drain(..).partition(|mail| mail.at_ms <= now_ms);
        relay.outbox = later;
        for mail in due {
            let copies = if relay.rng.chance(100) { 2 } else { 1 };
            for _ in 0..copies {
                let at_ms = now_ms + relay.rng.range(1, delay_max_ms);
                relay.held.push(Mail { at_ms, ..mail.clone() });
            }
        }
        let (due, later): (Vec<Mail>, Vec<Mail>) =
            relay.held.drain(..).partition(|mail| mail.at_ms <= now_ms && keepers_up[mail.to]);
        relay.held = later;
        for mail in due {
            match relay.known[mail.to].entry(mail.deal_id) {
                std::collections::hash_map::Entry::Occupied(_) => relay.duplicates += 1,
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(mail.token);
                    relay.delivered += 1;
                }
            }
        }
    }
}
