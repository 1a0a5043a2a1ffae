//! Sending the escrow's operations and reading its state.

use crate::bindings::InterlockEscrow::{self, InterlockEscrowInstance};
use crate::bindings::InterlockInspection;
use crate::error::EvmError;
use crate::reservation::EvmReservation;
use alloy::contract::{CallBuilder, CallDecoder, RawCallBuilder};
use alloy::network::{Ethereum, EthereumWallet};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use interlock_core::{Certificate, Condition, Decision, Secret};

/// A provider for the node at `endpoint` that signs for every key in `signers`
/// (a call picks its key with `from`). The first key is the default sender.
pub fn connect(endpoint: &str, signers: &[PrivateKeySigner]) -> Result<DynProvider, EvmError> {
    connect_trusting(endpoint, None, signers)
}

/// [`connect`] to an `https://` endpoint whose certificate chains to the CA
/// in `ca_file` (PEM) only, or with the system's roots when `None`.
pub fn connect_trusting(
    endpoint: &str,
    ca_file: Option<&std::path::Path>,
    signers: &[PrivateKeySigner],
) -> Result<DynProvider, EvmError> {
    let url = crate::http::endpoint_url(endpoint)?;
    let client = crate::http::http_client(ca_file)?;
    let (first, rest) = signers.split_first().ok_or_else(|| EvmError::Rpc("no signing key given".to_owned()))?;
    let mut wallet = EthereumWallet::new(first.clone());
    for signer in rest {
        wallet.register_signer(signer.clone());
    }
    // Each transaction asks the node for its sender's next nonce. alloy's default cache
    // takes a nonce before estimating gas and keeps it when the estimate reverts, so the
    // next transaction would leave a gap and never be mined. Concurrent submissions from
    // one account need a nonce manager of their own (the chain adapter's business).
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(wallet)
        .connect_reqwest(client, url);
    Ok(provider.erased())
}

/// How long a sent transaction may take to be mined before it counts as lost.
pub const RECEIPT_TIMEOUT_MS: u64 = 60_000;

/// A mined transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Submitted {
    pub tx_hash: B256,
    pub block_number: u64,
    pub gas_used: u64,
}

/// What a reservation's storage slot says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlotState {
    /// Never reserved.
    Empty,
    /// Open, committed to exactly these terms.
    Open,
    /// Open, but committed to other terms than the ones asked about.
    OpenWithOtherTerms,
    /// Executed under an inspection period: held for the notaries' verdict.
    Held,
    Executed,
    Cancelled,
}

/// One deployed `InterlockEscrow`.
#[derive(Clone, Debug)]
pub struct EscrowClient {
    contract: InterlockEscrowInstance<DynProvider>,
    /// The block that holds the deployment, when this client deployed it.
    deploy_height: Option<u64>,
}

impl EscrowClient {
    /// Deploys a new escrow from `from`, with the inspection module it delegates to
    /// deployed first, and waits for both to be mined; the client remembers the
    /// escrow's deploy block (see [`EscrowClient::deploy_height`]).
    pub async fn deploy(provider: DynProvider, from: Address) -> Result<EscrowClient, EvmError> {
        let module = InterlockInspection::deploy_builder(provider.clone()).from(from);
        let (module, _) = deployed(module.send().await.map_err(EvmError::from_contract)?).await?;
        let escrow = InterlockEscrow::deploy_builder(provider.clone(), module).from(from);
        let (address, height) = deployed(escrow.send().await.map_err(EvmError::from_contract)?).await?;
        Ok(EscrowClient { contract: InterlockEscrow::new(address, provider), deploy_height: Some(height) })
    }

    /// The escrow already deployed at `address`.
    pub fn at(address: Address, provider: DynProvider) -> EscrowClient {
        EscrowClient { contract: InterlockEscrow::new(address, provider), deploy_height: None }
    }

    /// The block that holds the contract's deployment, when this client
    /// deployed it: no escrow event can be older, so a follower starts there.
    pub fn deploy_height(&self) -> Option<u64> {
        self.deploy_height
    }

    pub fn address(&self) -> Address {
        *self.contract.address()
    }

    pub fn contract(&self) -> &InterlockEscrowInstance<DynProvider> {
        &self.contract
    }

    /// A call of this escrow with `input` (from the reservation's `*_input` builders).
    pub fn call(&self, input: Bytes) -> RawCallBuilder<&DynProvider> {
        RawCallBuilder::new_raw(self.contract.provider(), input).to(self.address())
    }

    /// Locks the reservation's asset, sent by its owner. A token must be approved first.
    pub async fn reserve(&self, reservation: &EvmReservation) -> Result<Submitted, EvmError> {
        let call = self.call(reservation.reserve_input()).value(reservation.asset.native_value());
        submit(call.from(reservation.owner)).await
    }

    /// Executes a hashlocked reservation with `secret`, sent by `from` (the
    /// beneficiary or its keeper). A secret whose hash is not the reservation's
    /// hashlock is refused here: the contract would only say the terms differ.
    pub async fn execute_with_secret(
        &self,
        from: Address,
        reservation: &EvmReservation,
        secret: &Secret,
    ) -> Result<Submitted, EvmError> {
        check_secret(reservation, secret)?;
        submit(self.call(reservation.execute_input(from, secret)).from(from)).await
    }

    /// Cancels after the expiry; anyone may send it, the asset goes to the owner.
    pub async fn cancel(&self, from: Address, reservation: &EvmReservation) -> Result<Submitted, EvmError> {
        submit(self.call(reservation.cancel_input(from)).from(from)).await
    }

    /// Presents the notaries' verdict (release or reverse) on a held reservation;
    /// anyone may send it.
    pub async fn resolve(
        &self,
        from: Address,
        reservation: &EvmReservation,
        verdict: &Certificate,
    ) -> Result<Submitted, EvmError> {
        self.present(from, reservation, verdict.decision, verdict).await
    }

    /// Presents `certificate` to the entry point that acts on `decision`, sent
    /// by `from`: a commit executes a notary-mode reservation (its beneficiary
    /// or keeper sends it), an abort cancels one (anyone may). The caller
    /// names the decision, so a certificate of another decision is refused by
    /// the contract, never acted on elsewhere; the contract does every check.
    pub async fn present(
        &self,
        from: Address,
        reservation: &EvmReservation,
        decision: Decision,
        certificate: &Certificate,
    ) -> Result<Submitted, EvmError> {
        let input = reservation.certificate_input(from, decision, signature_bytes(certificate));
        submit(self.call(input).from(from)).await
    }

    /// The reservation's slot (the contract keeps it at the reservation id), compared
    /// with its commitment.
    pub async fn state(&self, reservation: &EvmReservation) -> Result<SlotState, EvmError> {
        let slot = U256::from_be_bytes(reservation.id().0 .0);
        let word = self
            .contract
            .provider()
            .get_storage_at(self.address(), slot)
            .await
            .map_err(|error| EvmError::Rpc(error.to_string()))?;
        Ok(match B256::from(word) {
            slot if slot == B256::ZERO => SlotState::Empty,
            slot if slot == B256::with_last_byte(1) => SlotState::Executed,
            slot if slot == B256::with_last_byte(2) => SlotState::Cancelled,
            slot if slot == reservation.open_slot() => SlotState::Open,
            slot if slot == reservation.held_commitment() => SlotState::Held,
            _ => SlotState::OpenWithOtherTerms,
        })
    }
}

/// The node's newest block (its header; no transactions).
pub(crate) async fn latest_block(provider: &DynProvider) -> Result<alloy::rpc::types::Block, EvmError> {
    provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|error| EvmError::Rpc(error.to_string()))?
        .ok_or_else(|| EvmError::Rpc("the node has no latest block".to_owned()))
}

/// The address and block of a contract deployment once it is mined.
async fn deployed(pending: PendingTransactionBuilder<Ethereum>) -> Result<(Address, u64), EvmError> {
    let receipt = mined(pending).await?;
    let address = receipt
        .contract_address
        .ok_or_else(|| EvmError::Rpc(format!("deployment {} names no contract", receipt.transaction_hash)))?;
    let height = receipt.block_number.ok_or_else(|| {
        EvmError::Rpc(format!("deployment {} has a receipt without a block", receipt.transaction_hash))
    })?;
    Ok((address, height))
}

/// The receipt of a sent transaction once it is mined; a revert is an error.
async fn mined(pending: PendingTransactionBuilder<Ethereum>) -> Result<TransactionReceipt, EvmError> {
    let receipt = pending
        .with_timeout(Some(std::time::Duration::from_millis(RECEIPT_TIMEOUT_MS)))
        .get_receipt()
        .await
        .map_err(|error| EvmError::Rpc(error.to_string()))?;
    if !receipt.status() {
        return Err(EvmError::MinedReverted { tx_hash: receipt.transaction_hash });
    }
    Ok(receipt)
}

/// r||s||v of each signature, concatenated, as the contract takes them.
pub(crate) fn signature_bytes(certificate: &Certificate) -> Bytes {
    certificate.signatures.iter().flat_map(|signature| signature.0).collect::<Vec<u8>>().into()
}

/// Refuses a secret whose sha256 is not the reservation's hashlock.
pub(crate) fn check_secret(reservation: &EvmReservation, secret: &Secret) -> Result<(), EvmError> {
    match &reservation.condition {
        Condition::Hashlock(hash) if secret.hash() != *hash => {
            Err(EvmError::WrongSecret { reservation: B256::from(reservation.id().0 .0) })
        }
        _ => Ok(()),
    }
}

/// Sends `call`, waits for its receipt, and turns a revert into a decoded error.
pub(crate) async fn submit<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> Result<Submitted, EvmError> {
    let receipt = mined(call.send().await.map_err(EvmError::from_contract)?).await?;
    Ok(Submitted {
        tx_hash: receipt.transaction_hash,
        block_number: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
    })
}
