//! An EVM network against its live node, and deploying the escrow to one:
//! what `interlock directory check` and `interlock deploy evm` do.

use crate::bindings::{InterlockEscrow, InterlockInspection};
use crate::error::EvmError;
use crate::platform::{EvmAssetConfig, EvmConfig};
use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use interlock_chain::{ChainError, LiveCheck};
use std::path::Path;

/// Runs every live check of `config`; a node that does not answer fails the
/// first and skips the rest.
pub async fn check(config: &EvmConfig) -> Vec<LiveCheck> {
    let mut checks = Vec::new();
    let provider = match crate::http::read_only(&config.rpc, config.rpc_ca.as_deref().map(Path::new)) {
        Ok(provider) => provider,
        Err(error) => return vec![LiveCheck::failed("node", format!("{}: {error}", config.rpc))],
    };
    let chain_id = match provider.get_chain_id().await {
        Ok(chain_id) => chain_id,
        Err(error) => return vec![LiveCheck::failed("node", format!("{} does not answer: {error}", config.rpc))],
    };
    checks.push(match config.chain_id {
        Some(expected) if expected != chain_id => {
            LiveCheck::failed("chain id", format!("the node is chain {chain_id}, the configuration names {expected}"))
        }
        Some(_) => LiveCheck::passed("chain id", format!("{chain_id}")),
        None => LiveCheck::failed(
            "chain id",
            format!("not set: the node is chain {chain_id}; add \"chain_id\": {chain_id}"),
        ),
    });
    match config.escrow_address() {
        Ok(escrow) => {
            checks.push(escrow_code(&provider, escrow).await);
            checks.push(deploy_height(&provider, escrow, config.deploy_height).await);
        }
        Err(error) => checks.push(LiveCheck::failed("escrow code", error.to_string())),
    }
    checks.push(if config.confirmations >= 2 {
        LiveCheck::passed("confirmation depth", format!("{}", config.confirmations))
    } else {
        LiveCheck::failed(
            "confirmation depth",
            format!(
                "{}: a chain that reorganises needs at least 2 (1 acts on a block that may vanish)",
                config.confirmations
            ),
        )
    });
    checks.push(block_pace(&provider, config.block_interval_ms).await);
    if config.finality == crate::Finality::Finalized {
        checks.push(finalized_block(&provider, config.finality_blocks).await);
    }
    for (code, asset) in &config.assets {
        checks.push(asset_code(&provider, code, asset).await);
    }
    checks
}

/// With `finality = "finalized"`, the node must name its finalized block; how
/// far it trails the newest is shown beside what the margins count.
async fn finalized_block(provider: &DynProvider, counted: u64) -> LiveCheck {
    let finalized = provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Finalized).await;
    let head = provider.get_block_number().await;
    match (finalized, head) {
        (Ok(Some(block)), Ok(head)) => LiveCheck::passed(
            "finality",
            format!(
                "the node's finalized block is {}, {} behind its newest ({counted} counted in deal margins)",
                block.header.number,
                head.saturating_sub(block.header.number)
            ),
        ),
        (Ok(None), _) => LiveCheck::failed(
            "finality",
            "the node names no finalized block: this chain needs finality = \"depth\"".to_owned(),
        ),
        (Err(error), _) | (_, Err(error)) => {
            LiveCheck::failed("finality", format!("reading the finalized block: {error}"))
        }
    }
}

/// Blocks over which the chain's pace is measured.
const PACE_BLOCKS: u64 = 20;

/// The chain's newest blocks come no slower than `block_interval_ms` says:
/// deal margins counted on a faster pace than the chain keeps would be short.
async fn block_pace(provider: &DynProvider, configured_ms: u64) -> LiveCheck {
    const CHECK: &str = "block interval";
    let block = |number| provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Number(number));
    let head = match provider.get_block_number().await {
        Ok(head) => head,
        Err(error) => return LiveCheck::failed(CHECK, format!("reading the newest block: {error}")),
    };
    let blocks = head.min(PACE_BLOCKS);
    if blocks == 0 {
        return LiveCheck::passed(CHECK, format!("no blocks to measure yet ({configured_ms} ms configured)"));
    }
    let (newest, oldest) = match (block(head).await, block(head - blocks).await) {
        (Ok(Some(newest)), Ok(Some(oldest))) => (newest.header.timestamp, oldest.header.timestamp),
        (Err(error), _) | (_, Err(error)) => {
            return LiveCheck::failed(CHECK, format!("reading the newest {blocks} blocks: {error}"))
        }
        _ => return LiveCheck::failed(CHECK, format!("the node lacks one of blocks {} and {head}", head - blocks)),
    };
    let measured_ms = newest.saturating_sub(oldest).saturating_mul(1000) / blocks;
    // Timestamps are whole seconds (one second of rounding over the span),
    // and a chain's pace varies: a quarter more is allowed.
    let allowed_ms = configured_ms + configured_ms / 4 + 1000 / blocks;
    if measured_ms > allowed_ms {
        return LiveCheck::failed(
            CHECK,
            format!(
                "the newest {blocks} blocks came every {measured_ms} ms, slower than block_interval_ms = \
                 {configured_ms}: deal margins counted on it would be too short; set block_interval_ms to at \
                 least {measured_ms}"
            ),
        );
    }
    LiveCheck::passed(
        CHECK,
        format!("every {measured_ms} ms over the newest {blocks} blocks ({configured_ms} ms configured)"),
    )
}

/// The code at `escrow` is the committed artifact's, and so is the code of the
/// inspection module it delegates to: the node runs each artifact's constructor
/// (`eth_call`, nothing sent) and the runtime code it returns must be the code
/// the address holds. The escrow's code names its module, so its constructor is
/// run twice: naming the escrow itself (any address with code passes its check)
/// shows where the name sits, then naming the module found there.
async fn escrow_code(provider: &DynProvider, escrow: Address) -> LiveCheck {
    let failed = |detail: String| LiveCheck::failed("escrow code", detail);
    let at = match provider.get_code_at(escrow).await {
        Ok(code) => code,
        Err(error) => return failed(format!("reading the code at {escrow}: {error}")),
    };
    if at.is_empty() {
        return failed(format!("no contract at {escrow}"));
    }
    let probe = match runtime_code(provider, escrow_creation(escrow)).await {
        Ok(code) => code,
        Err(error) => return failed(format!("running the artifact's constructor: {error}")),
    };
    let expected = match module_named(&at, &probe, escrow) {
        Some(module) => runtime_code(provider, escrow_creation(module)).await.map(|code| (module, code)),
        None => Ok((Address::ZERO, probe)),
    };
    let module = match expected {
        Ok((module, expected)) if expected == at => module,
        Ok((_, expected)) => {
            return failed(format!(
                "{escrow} holds {} bytes of code that are not the committed InterlockEscrow's ({} bytes)",
                at.len(),
                expected.len()
            ))
        }
        Err(error) => return failed(format!("running the artifact's constructor: {error}")),
    };
    let module_code = provider.get_code_at(module).await.map_err(|error| error.to_string());
    let module_expected = runtime_code(provider, InterlockInspection::BYTECODE.to_vec()).await;
    match (module_code, module_expected) {
        (Ok(code), Ok(expected)) if code == expected => LiveCheck::passed(
            "escrow code",
            format!(
                "{escrow} holds the committed InterlockEscrow ({} bytes), its inspection module {module} the \
                 committed InterlockInspection ({} bytes)",
                at.len(),
                code.len()
            ),
        ),
        (Ok(code), Ok(expected)) => failed(format!(
            "{escrow}'s inspection module {module} holds {} bytes of code that are not the committed \
             InterlockInspection's ({} bytes)",
            code.len(),
            expected.len()
        )),
        (Err(error), _) => failed(format!("reading the code at {module}: {error}")),
        (_, Err(error)) => failed(format!("running the inspection module's constructor: {error}")),
    }
}

/// The creation code of an escrow delegating to `module`.
fn escrow_creation(module: Address) -> Vec<u8> {
    use alloy::sol_types::SolConstructor;
    let mut input = InterlockEscrow::BYTECODE.to_vec();
    input.extend(InterlockEscrow::constructorCall { inspection: module }.abi_encode());
    input
}

/// The runtime code a creation code returns, run by the node without sending anything.
async fn runtime_code(provider: &DynProvider, creation: Vec<u8>) -> Result<Bytes, String> {
    let creation = TransactionRequest::default().input(Bytes::from(creation).into());
    provider.call(creation).await.map_err(|error| error.to_string())
}

/// The module `at` names where `probe` (the same code made naming `escrow`) names
/// `escrow`; `None` when the two are not the same length or `probe` does not name it.
fn module_named(at: &[u8], probe: &[u8], escrow: Address) -> Option<Address> {
    if at.len() != probe.len() {
        return None;
    }
    let position = probe.windows(20).position(|window| window == escrow.as_slice())?;
    Some(Address::from_slice(&at[position..position + 20]))
}

/// The escrow was deployed in block `height`: no code there the block before.
async fn deploy_height(provider: &DynProvider, escrow: Address, height: u64) -> LiveCheck {
    if height == 0 {
        return LiveCheck::failed("deploy height", "not set: a first start would read the chain from its genesis");
    }
    let before = provider.get_code_at(escrow).block_id(BlockId::number(height - 1)).await;
    let at = provider.get_code_at(escrow).block_id(BlockId::number(height)).await;
    match (before, at) {
        (Ok(before), Ok(at)) if before.is_empty() && !at.is_empty() => {
            LiveCheck::passed("deploy height", format!("{height}"))
        }
        (Ok(_), Ok(_)) => LiveCheck::failed(
            "deploy height",
            format!("the escrow was not deployed in block {height} (code before it, or none in it)"),
        ),
        // A node without history cannot say; the height stays the operator's word.
        (Err(error), _) | (_, Err(error)) => {
            LiveCheck::passed("deploy height", format!("{height} (the node keeps no state that old: {error})"))
        }
    }
}

async fn asset_code(provider: &DynProvider, code: &str, asset: &EvmAssetConfig) -> LiveCheck {
    let check = format!("asset {code}");
    let address = match asset {
        EvmAssetConfig::Native => return LiveCheck::passed(&check, "the chain's own coin"),
        EvmAssetConfig::Erc20(address) | EvmAssetConfig::Erc721(address) => address,
    };
    let parsed = match crate::parse_evm_address(address) {
        Ok(parsed) => parsed,
        Err(error) => return LiveCheck::failed(&check, error.to_string()),
    };
    match provider.get_code_at(parsed).await {
        Ok(code) if !code.is_empty() => LiveCheck::passed(&check, format!("a contract at {parsed}")),
        Ok(_) => LiveCheck::failed(&check, format!("no contract at {parsed}")),
        Err(error) => LiveCheck::failed(&check, format!("reading the code at {parsed}: {error}")),
    }
}

/// Deploys the escrow to the node at `rpc` from the account of `key_file`
/// and returns the network's configuration: the contract, its deploy height,
/// the chain id and a confirmation depth of `confirmations`; assets are the
/// operator's to add.
pub async fn deploy(
    rpc: &str,
    key_file: &Path,
    rpc_ca: Option<&Path>,
    confirmations: u64,
) -> Result<EvmConfig, ChainError> {
    let signer = crate::read_signer(key_file)?;
    let from = signer.address();
    let provider = crate::connect_trusting(rpc, rpc_ca, &[signer]).map_err(|error| crate::evm_error(&error))?;
    let chain_id =
        provider.get_chain_id().await.map_err(|error| crate::evm_error(&EvmError::Rpc(error.to_string())))?;
    let escrow = crate::EscrowClient::deploy(provider, from).await.map_err(|error| crate::evm_error(&error))?;
    let stanza = serde_json::json!({
        "rpc": rpc,
        "escrow": escrow.address().to_string(),
        "confirmations": confirmations,
        "assets": {},
    });
    let mut config = EvmConfig::from_value(interlock_core::NetworkId(0), &stanza)?;
    config.rpc_ca = rpc_ca.map(|path| path.display().to_string());
    config.chain_id = Some(chain_id);
    config.deploy_height = escrow.deploy_height().unwrap_or(0);
    Ok(config)
}
