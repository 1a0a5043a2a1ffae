//! Shared setup: keys and the files that keep them, and the in-process world
//! of two SQLite ledgers with their funding.

use crate::runtime::Runtime;
use anyhow::Context as _;
use interlock_core::crypto::{NotaryKey, PartyKey};
use interlock_core::{Address, Asset, AssetCode, ItemId, NetworkId};
use interlock_ledger::{Genesis, Ledger, Op, SqliteStore, Transaction};
use std::io::Write as _;
use std::path::Path;

pub const ALPHA: NetworkId = NetworkId(1);
pub const BETA: NetworkId = NetworkId(2);
/// The third network of a routed sandbox, linked to alpha only through beta.
pub const GAMMA: NetworkId = NetworkId(3);

pub fn network_name(network: NetworkId) -> String {
    match network {
        ALPHA => "alpha".into(),
        BETA => "beta".into(),
        other => other.to_string(),
    }
}

pub fn random_bytes() -> anyhow::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("the operating system's random source failed")?;
    Ok(bytes)
}

pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(since_epoch.as_millis()).expect("milliseconds fit u64 until the year 584 million")
}

/// Reads a 32-byte secret seed kept in hex at `path`, or draws one and writes it
/// (mode 0600) on first start.
pub fn seed_file(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = interlock_core::hash::from_hex(text.trim())
            .filter(|b| b.len() == 32)
            .with_context(|| format!("{} must hold 64 hex digits ({what})", path.display()))?;
        return Ok(bytes.try_into().expect("checked length"));
    }
    let seed = random_bytes()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", interlock_core::hash::to_hex(&seed))?;
    Ok(seed)
}

trait CreateMode {
    fn mode_0600(&mut self) -> &mut Self;
}

impl CreateMode for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

pub fn address(key: &PartyKey) -> Address {
    Address::from_bytes(key.public().0)
}

pub fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("built-in asset codes are valid")
}

/// What each party starts with.
pub struct Funding {
    pub buyer_usd_on_alpha: u128,
    pub seller_gold_on_beta: u128,
    pub seller_titles_on_beta: u128,
}

/// Who receives an asset at the start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Holder {
    Buyer,
    Seller,
}

/// Opens (creating) the two networks' SQLite ledgers in `dir`, registers the
/// buyer and seller on both and funds them.
pub fn world(dir: &Path, funding: &Funding, notary_count: usize) -> anyhow::Result<Runtime<SqliteStore>> {
    let mut issues =
        vec![(ALPHA, Holder::Buyer, Asset::Fungible { code: code("USD"), amount: funding.buyer_usd_on_alpha })];
    issues.push((BETA, Holder::Seller, Asset::Fungible { code: code("GOLD"), amount: funding.seller_gold_on_beta }));
    for item in 1..=funding.seller_titles_on_beta {
        issues.push((BETA, Holder::Seller, Asset::Unique { class: code("TITLE"), item: ItemId::from_u128(item) }));
    }
    world_on(dir, &[ALPHA, BETA], &issues, notary_count)
}

/// Opens (creating) one SQLite ledger per network in `dir`, registers the buyer
/// and seller on each and issues them `issues`.
pub fn world_on(
    dir: &Path,
    networks: &[NetworkId],
    issues: &[(NetworkId, Holder, Asset)],
    notary_count: usize,
) -> anyhow::Result<Runtime<SqliteStore>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let operator = PartyKey::from_seed(random_bytes()?);
    let buyer = PartyKey::from_seed(random_bytes()?);
    let seller = PartyKey::from_seed(random_bytes()?);
    let mut notaries = Vec::new();
    while notaries.len() < notary_count {
        if let Some(key) = NotaryKey::from_seed(random_bytes()?) {
            notaries.push(key);
        }
    }
    let now = now_ms();
    let mut ledgers = Vec::new();
    for network in networks.iter().copied() {
        let path = dir.join(format!("{}.sqlite", network_name(network)));
        if path.exists() {
            anyhow::bail!("{} already exists: pass an empty or new --dir", path.display());
        }
        let store = SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let genesis = Genesis { network, operator: operator.public(), timestamp_ms: now };
        let mut ledger = Ledger::open(store, genesis)?;
        let mut ops = vec![Op::Register { account: buyer.public() }, Op::Register { account: seller.public() }];
        for (_, holder, asset) in issues.iter().filter(|(on, _, _)| *on == network) {
            let to = address(if *holder == Holder::Buyer { &buyer } else { &seller });
            ops.push(Op::Issue { to, asset: asset.clone() });
        }
        for (nonce, op) in (1u64..).zip(ops) {
            ledger.submit(Transaction::sign(&operator, network, nonce, op))?;
        }
        let block = ledger.produce_block(now)?.context("genesis block")?;
        if let Some(rejection) = block.rejected.first() {
            anyhow::bail!("funding refused: {}", rejection.error);
        }
        ledgers.push(ledger);
    }
    Ok(Runtime::new(ledgers, buyer, seller, notaries))
}
