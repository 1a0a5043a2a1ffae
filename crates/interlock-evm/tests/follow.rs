//! Following a chain that holds more than Interlock, through a JSON-RPC proxy
//! that counts the follower's calls: a first start reads from the escrow's
//! deploy block, never from the genesis.

mod common;
mod rpc_proxy;

use interlock_chain::{ChainEvent, Credentials, Cursor, Platform};
use interlock_core::NetworkId;
use interlock_evm::alloy::primitives::{B256, U256};
use interlock_evm::alloy::providers::{DynProvider, Provider};
use interlock_evm::alloy::signers::local::PrivateKeySigner;
use interlock_evm::anvil::Anvil;
use interlock_evm::{connect, EscrowClient, EvmConfig, EvmPlatform};
use rpc_proxy::RpcProxy;

const NETWORK: NetworkId = NetworkId(2);
/// Blocks mined before the escrow is deployed: a chain that held other things first.
const BLOCKS_BEFORE_DEPLOY: u64 = 1_000;

/// anvil with `blocks_before` empty blocks, then the escrow deployed.
async fn chain_with_history(blocks_before: u64) -> (Anvil, DynProvider, EscrowClient) {
    let anvil = Anvil::start().unwrap_or_else(|error| panic!("{error}"));
    let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(1)).expect("valid key");
    let deployer = signer.address();
    let provider = connect(anvil.endpoint(), &[signer]).expect("provider");
    let _: () = provider.raw_request("anvil_setBalance".into(), (deployer, U256::from(10u128.pow(21)))).await.unwrap();
    let _: () = provider.raw_request("anvil_mine".into(), (U256::from(blocks_before),)).await.unwrap();
    let escrow = EscrowClient::deploy(provider.clone(), deployer).await.expect("deploy the escrow");
    (anvil, provider, escrow)
}

fn config(rpc: &str, escrow: &EscrowClient) -> serde_json::Value {
    serde_json::to_value(common::follow_config(rpc, escrow)).expect("serialises")
}

#[tokio::test]
async fn a_first_start_reads_nothing_below_the_deploy_height() {
    let (anvil, provider, escrow) = chain_with_history(BLOCKS_BEFORE_DEPLOY).await;
    let deploy_height = escrow.deploy_height().expect("deployed here");
    assert!(deploy_height > BLOCKS_BEFORE_DEPLOY, "deployed after the history, at {deploy_height}");
    let _: () = provider.raw_request("anvil_mine".into(), (U256::from(3),)).await.unwrap();
    let proxy = RpcProxy::start(anvil.endpoint()).await;
    let config = config(&proxy.url, &escrow);

    let first = EvmPlatform.first_cursor(NETWORK, &config).expect("a valid configuration");
    assert_eq!(first, Cursor::start(deploy_height - 1), "just before the deploy block");
    let mut follower = EvmPlatform.follower(NETWORK, &config, &Credentials::default(), first).await.expect("follower");
    let delivered = follower.poll().await.expect("poll");
    let [ChainEvent::Block(block)] = delivered.as_slice() else { panic!("one block, found {delivered:?}") };
    assert_eq!(block.cursor.height, deploy_height + 3, "caught up with the head at once");

    let ranges = proxy.log_ranges();
    assert_eq!(ranges, vec![(deploy_height, deploy_height + 3, false)], "one log query, from the deploy block");
    let calls: Vec<String> = proxy.calls().into_iter().map(|call| call.method).collect();
    println!("a first start {deploy_height} blocks into the chain: {} calls {calls:?}", calls.len());
}

#[test]
fn a_directory_written_before_the_deploy_height_still_parses_and_starts_at_the_genesis() {
    let old = serde_json::json!({
        "rpc": "http://127.0.0.1:8545",
        "escrow": "0x00000000000000000000000000000000000000aa",
        "confirmations": 2,
        "assets": { "ETH": "native" },
    });
    let config = EvmConfig::from_value(NETWORK, &old).expect("parses");
    assert_eq!(config.deploy_height, 0, "unknown");
    assert_eq!(EvmPlatform.first_cursor(NETWORK, &old).unwrap(), Cursor::start(0));
}

/// Through the seam, a network configured with `finality = "finalized"` is
/// followed only up to the node's finalized block (anvil's trails by 64).
#[tokio::test]
async fn a_network_that_waits_for_finality_is_followed_up_to_the_finalized_block() {
    let (anvil, provider, escrow) = chain_with_history(10).await;
    let deploy_height = escrow.deploy_height().expect("deployed here");
    let mut config = config(anvil.endpoint(), &escrow);
    config["finality"] = "finalized".into();
    let first = EvmPlatform.first_cursor(NETWORK, &config).expect("a valid configuration");
    let mut follower = EvmPlatform.follower(NETWORK, &config, &Credentials::default(), first).await.expect("follower");
    assert!(follower.poll().await.expect("poll").is_empty(), "the deploy block is not finalized yet");
    let _: () = provider.raw_request("anvil_mine".into(), (U256::from(100),)).await.unwrap();
    let head = provider.get_block_number().await.unwrap();
    let delivered = follower.poll().await.expect("poll");
    let [ChainEvent::Block(block)] = delivered.as_slice() else { panic!("one block, found {delivered:?}") };
    assert_eq!(block.cursor.height, head - 64, "up to the finalized block, not the head at depth 1");
    assert!(block.cursor.height >= deploy_height);
}
