//! The escrow rules every ledger applies: reserve, execute, cancel.
//!
//! A ledger offers what the rules need through [`EscrowContext`]; the embedded
//! ledger and the simulator implement it, and each platform's escrow keeps the
//! same rules in its own terms (the conformance suite checks it). Each rule
//! checks every precondition before it changes anything, so a refused operation
//! leaves the ledger exactly as it was.

mod codec;

use crate::crypto::{Certificate, CertificateError, Decision, Token};
use crate::hash::{DealId, Hash32, ReservationId};
use crate::limits::NOTARIES_MAX;
use crate::types::{reservation_id, Address, Asset, LegKind, NotaryAddress};
use serde::{Deserialize, Serialize};

/// What unlocks a reservation.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Condition {
    /// The preimage of this sha256 hash, before the expiry.
    Hashlock(Hash32),
    /// A commit certificate from `threshold` of `notaries` (an abort certificate
    /// cancels).
    Notary { notaries: Vec<NotaryAddress>, threshold: u8 },
    /// As [`Condition::Notary`], but a commit certificate only *holds* the
    /// asset for its beneficiary: it moves on the notaries' verdict, a release
    /// or reverse certificate ([`resolve`]). The leg of a deal with an
    /// inspection period.
    Inspected { notaries: Vec<NotaryAddress>, threshold: u8 },
}

impl Condition {
    /// The notary set and threshold of a notary condition.
    pub fn notaries(&self) -> Option<(&[NotaryAddress], u8)> {
        match self {
            Condition::Hashlock(_) => None,
            Condition::Notary { notaries, threshold } | Condition::Inspected { notaries, threshold } => {
                Some((notaries, *threshold))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ReservationState {
    Reserved,
    /// Executed under an inspection period: the asset stays in escrow for its
    /// beneficiary until the notaries' verdict releases or reverses it.
    Held,
    Executed,
    Cancelled,
}

/// What a reserve operation asks for. The reservation id is derived from the deal
/// and the leg.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub deal_id: DealId,
    pub leg: LegKind,
    pub asset: Asset,
    pub owner: Address,
    pub beneficiary: Address,
    /// May execute for the beneficiary; the asset still goes to the beneficiary.
    pub keeper: Option<Address>,
    pub condition: Condition,
    pub expiry_ms: u64,
}

/// A lock of one leg's asset, naming the one account that may execute it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub deal_id: DealId,
    pub leg: LegKind,
    pub asset: Asset,
    pub owner: Address,
    pub beneficiary: Address,
    pub keeper: Option<Address>,
    pub condition: Condition,
    pub expiry_ms: u64,
    pub state: ReservationState,
}

impl ReserveRequest {
    /// The open reservation this request makes.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            id: reservation_id(self.deal_id, self.leg),
            deal_id: self.deal_id,
            leg: self.leg,
            asset: self.asset.clone(),
            owner: self.owner,
            beneficiary: self.beneficiary,
            keeper: self.keeper,
            condition: self.condition.clone(),
            expiry_ms: self.expiry_ms,
            state: ReservationState::Reserved,
        }
    }
}

impl Reservation {
    /// The event of `by` executing this reservation with `token`: the
    /// asset goes to the beneficiary.
    pub fn executed(&self, by: Address, token: Token) -> EscrowEvent {
        EscrowEvent::Executed {
            reservation: self.id,
            deal_id: self.deal_id,
            leg: self.leg,
            by,
            to: self.beneficiary,
            asset: self.asset.clone(),
            token,
        }
    }

    /// The event of `by` cancelling this reservation: the asset goes back
    /// to its owner.
    pub fn cancelled(&self, by: Address) -> EscrowEvent {
        EscrowEvent::Cancelled {
            reservation: self.id,
            deal_id: self.deal_id,
            leg: self.leg,
            by,
            to: self.owner,
            asset: self.asset.clone(),
        }
    }

    /// The event of `by` executing this inspected reservation with `token`:
    /// the asset is held for the beneficiary.
    pub fn held(&self, by: Address, token: Token) -> EscrowEvent {
        EscrowEvent::Held {
            reservation: self.id,
            deal_id: self.deal_id,
            leg: self.leg,
            by,
            beneficiary: self.beneficiary,
            asset: self.asset.clone(),
            token,
        }
    }

    /// True when this reservation carries exactly `request`'s parameters.
    pub fn matches(&self, request: &ReserveRequest) -> bool {
        self.deal_id == request.deal_id
            && self.leg == request.leg
            && self.asset == request.asset
            && self.owner == request.owner
            && self.beneficiary == request.beneficiary
            && self.keeper == request.keeper
            && self.condition == request.condition
            && self.expiry_ms == request.expiry_ms
    }
}

/// An operation on the escrow module.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EscrowOp {
    Reserve(ReserveRequest),
    Execute {
        reservation: ReservationId,
        token: Token,
    },
    Cancel {
        reservation: ReservationId,
        certificate: Option<Certificate>,
    },
    /// Presents the notaries' verdict on a held reservation: a release pays
    /// the beneficiary, a reverse pays the owner back. Anyone may present it.
    Resolve {
        reservation: ReservationId,
        verdict: Certificate,
    },
}

impl EscrowOp {
    pub fn reservation_id(&self) -> ReservationId {
        match self {
            EscrowOp::Reserve(request) => reservation_id(request.deal_id, request.leg),
            EscrowOp::Execute { reservation, .. }
            | EscrowOp::Cancel { reservation, .. }
            | EscrowOp::Resolve { reservation, .. } => *reservation,
        }
    }
}

/// What an applied operation did; a ledger publishes these as its events.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EscrowEvent {
    Reserved(Reservation),
    /// The reservation's asset went to `to` (always the beneficiary); `token` is
    /// what unlocked it, so a hashlock execution reveals the secret here.
    Executed {
        reservation: ReservationId,
        deal_id: DealId,
        leg: LegKind,
        by: Address,
        to: Address,
        asset: Asset,
        token: Token,
    },
    /// The reservation's asset went back to `to` (always the owner); after
    /// [`EscrowEvent::Held`], on a reverse verdict.
    Cancelled {
        reservation: ReservationId,
        deal_id: DealId,
        leg: LegKind,
        by: Address,
        to: Address,
        asset: Asset,
    },
    /// The reservation was executed under an inspection period: its asset is
    /// held in escrow for `beneficiary` until the verdict, which is reported
    /// as [`EscrowEvent::Executed`] (release) or [`EscrowEvent::Cancelled`]
    /// (reverse).
    Held {
        reservation: ReservationId,
        deal_id: DealId,
        leg: LegKind,
        by: Address,
        beneficiary: Address,
        asset: Asset,
        token: Token,
    },
}

impl EscrowEvent {
    pub fn deal_id(&self) -> DealId {
        match self {
            EscrowEvent::Reserved(reservation) => reservation.deal_id,
            EscrowEvent::Executed { deal_id, .. }
            | EscrowEvent::Cancelled { deal_id, .. }
            | EscrowEvent::Held { deal_id, .. } => *deal_id,
        }
    }
    pub fn leg(&self) -> LegKind {
        match self {
            EscrowEvent::Reserved(reservation) => reservation.leg,
            EscrowEvent::Executed { leg, .. } | EscrowEvent::Cancelled { leg, .. } | EscrowEvent::Held { leg, .. } => {
                *leg
            }
        }
    }
}

/// Why an escrow operation was refused. The ledger state is unchanged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("reserve must be signed by the owner {owner:?}, found {signer:?}")]
    NotOwner { owner: Address, signer: Address },
    #[error("reservation {0} already exists: each leg is reserved once")]
    AlreadyReserved(ReservationId),
    #[error("no reservation {0}")]
    UnknownReservation(ReservationId),
    #[error("reservation {id} is already {state:?}: it settles exactly once")]
    AlreadySettled { id: ReservationId, state: ReservationState },
    #[error(
        "only the beneficiary {beneficiary:?} (or the keeper it named) may execute reservation {id}, found {signer:?}"
    )]
    NotBeneficiary { id: ReservationId, beneficiary: Address, signer: Address },
    #[error("invalid hashlock preimage: sha256 does not match reservation {0}")]
    WrongSecret(ReservationId),
    #[error("reservation {id} expired at {expiry_ms}, now {now_ms}")]
    Expired { id: ReservationId, expiry_ms: u64, now_ms: u64 },
    #[error("reservation {id} cannot be cancelled before its expiry {expiry_ms} (now {now_ms}) without an abort certificate")]
    NotExpired { id: ReservationId, expiry_ms: u64, now_ms: u64 },
    #[error("reservation {id} is {condition}-locked, found a {token} token")]
    WrongTokenKind { id: ReservationId, condition: &'static str, token: &'static str },
    #[error("invalid notary certificate for reservation {id}: {error}")]
    BadCertificate { id: ReservationId, error: CertificateError },
    #[error("expiry {expiry_ms} is not in the future (now {now_ms})")]
    ExpiryInPast { expiry_ms: u64, now_ms: u64 },
    #[error("a reservation may not name its owner {0:?} as beneficiary or keeper")]
    SelfDealing(Address),
    #[error("reserved amount must be positive")]
    ZeroAmount,
    #[error("notary threshold {threshold} of {count}: expected 1 <= threshold <= notaries <= {max}, distinct")]
    NotarySet { threshold: u8, count: usize, max: usize },
    #[error("unknown asset {0}")]
    UnknownAsset(String),
    #[error("insufficient funds: {owner:?} holds {held} {code}, needs {needed}")]
    InsufficientFunds { owner: Address, code: String, held: u128, needed: u128 },
    #[error("{owner:?} does not own {class} {item}")]
    NotItemOwner { owner: Address, class: String, item: String },
    #[error("reservation {id} is {state:?}, not held: only a held reservation takes a verdict")]
    NotHeld { id: ReservationId, state: ReservationState },
    #[error("reservation {id} is held for a verdict (release or reverse), found a {found} certificate")]
    NotAVerdict { id: ReservationId, found: Decision },
}

/// What a chain itself holds of the escrow rules. An account chain (the
/// embedded ledger, an escrow contract) holds all of them
/// ([`Rules::ACCOUNTS`]). A script chain ([`Rules::script`], a UTXO chain) holds
/// what its script and consensus can say: only the keys the script names
/// spend (the beneficiary executes, the owner cancels; nobody acts for them),
/// nothing stops a beneficiary claiming with the secret after the expiry
/// while the output is unspent, and a lock time is judged by the chain's
/// median time past, which trails the clock by `lock_time_lag_ms`. Parties
/// never claim late; what these rules allow is what an adversary can do.
/// There every spend of a leg also pays its fee out of the leg
/// (`spends_pay_fees`): the payee receives the leg less the fee. These rules
/// say only that it does; how much a spend pays is the ledger's business.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rules {
    /// Only the beneficiary executes and only the owner cancels.
    pub named_keys_only: bool,
    /// A hashlock claim is taken after the expiry, until the leg is cancelled.
    pub claims_after_expiry: bool,
    /// How far the time lapsed legs are judged by trails the clock.
    pub lock_time_lag_ms: u64,
    /// An execute or cancel pays a fee out of the leg it spends.
    pub spends_pay_fees: bool,
}

impl Rules {
    /// Every rule, on the clock.
    pub const ACCOUNTS: Rules =
        Rules { named_keys_only: false, claims_after_expiry: false, lock_time_lag_ms: 0, spends_pay_fees: false };

    /// A script chain whose median time past trails the clock by `lag_ms`.
    pub fn script(lag_ms: u64) -> Rules {
        Rules { named_keys_only: true, claims_after_expiry: true, lock_time_lag_ms: lag_ms, spends_pay_fees: true }
    }
}

/// What a ledger offers the escrow rules.
pub trait EscrowContext {
    fn reservation(&self, id: &ReservationId) -> Option<&Reservation>;
    /// Ok when `owner` holds `asset` now; the error says what is missing.
    fn check_holds(&self, owner: &Address, asset: &Asset) -> Result<(), EscrowError>;
    /// Moves `asset` from `owner` into escrow. Called only after `check_holds` passed.
    fn lock(&mut self, owner: &Address, asset: &Asset);
    /// Moves `asset` out of escrow to `to`.
    fn release(&mut self, to: &Address, asset: &Asset);
    fn insert_reservation(&mut self, reservation: Reservation);
    fn set_state(&mut self, id: &ReservationId, state: ReservationState);
}

pub fn apply<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    op: &EscrowOp,
    now_ms: u64,
) -> Result<EscrowEvent, EscrowError> {
    apply_under(context, signer, op, now_ms, Rules::ACCOUNTS)
}

/// [`apply`] as a chain that holds `rules` does.
pub fn apply_under<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    op: &EscrowOp,
    now_ms: u64,
    rules: Rules,
) -> Result<EscrowEvent, EscrowError> {
    match op {
        EscrowOp::Reserve(request) => reserve(context, signer, request, now_ms),
        EscrowOp::Execute { reservation, token } => execute_under(context, signer, reservation, token, now_ms, rules),
        EscrowOp::Cancel { reservation, certificate } => {
            cancel_under(context, signer, reservation, certificate.as_ref(), now_ms, rules)
        }
        EscrowOp::Resolve { reservation, verdict } => resolve(context, signer, reservation, verdict),
    }
}

pub fn reserve<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    request: &ReserveRequest,
    now_ms: u64,
) -> Result<EscrowEvent, EscrowError> {
    if *signer != request.owner {
        return Err(EscrowError::NotOwner { owner: request.owner, signer: *signer });
    }
    if request.owner == request.beneficiary || request.keeper == Some(request.owner) {
        return Err(EscrowError::SelfDealing(request.owner));
    }
    if request.expiry_ms <= now_ms {
        return Err(EscrowError::ExpiryInPast { expiry_ms: request.expiry_ms, now_ms });
    }
    if let Asset::Fungible { amount: 0, .. } = request.asset {
        return Err(EscrowError::ZeroAmount);
    }
    if let Some((notaries, threshold)) = request.condition.notaries() {
        let distinct = notaries.iter().enumerate().all(|(index, n)| !notaries[..index].contains(n));
        let count = notaries.len();
        if threshold == 0 || usize::from(threshold) > count || count > NOTARIES_MAX || !distinct {
            return Err(EscrowError::NotarySet { threshold, count, max: NOTARIES_MAX });
        }
    }
    let id = reservation_id(request.deal_id, request.leg);
    if context.reservation(&id).is_some() {
        return Err(EscrowError::AlreadyReserved(id));
    }
    context.check_holds(&request.owner, &request.asset)?;

    let reservation = request.reservation();
    context.lock(&request.owner, &request.asset);
    context.insert_reservation(reservation.clone());
    Ok(EscrowEvent::Reserved(reservation))
}

fn open_reservation<'c, C: EscrowContext>(context: &'c C, id: &ReservationId) -> Result<&'c Reservation, EscrowError> {
    let reservation = context.reservation(id).ok_or(EscrowError::UnknownReservation(*id))?;
    if reservation.state != ReservationState::Reserved {
        return Err(EscrowError::AlreadySettled { id: *id, state: reservation.state });
    }
    Ok(reservation)
}

fn token_kind(token: &Token) -> &'static str {
    match token {
        Token::Secret(_) => "secret",
        Token::Certificate(_) => "certificate",
    }
}

pub fn execute<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    id: &ReservationId,
    token: &Token,
    now_ms: u64,
) -> Result<EscrowEvent, EscrowError> {
    execute_under(context, signer, id, token, now_ms, Rules::ACCOUNTS)
}

fn execute_under<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    id: &ReservationId,
    token: &Token,
    now_ms: u64,
    rules: Rules,
) -> Result<EscrowEvent, EscrowError> {
    let reservation = open_reservation(context, id)?;
    // The beneficiary, or the keeper it named; either way the asset goes to the beneficiary.
    let keeper = reservation.keeper.filter(|_| !rules.named_keys_only);
    if *signer != reservation.beneficiary && Some(*signer) != keeper {
        return Err(EscrowError::NotBeneficiary { id: *id, beneficiary: reservation.beneficiary, signer: *signer });
    }
    match (&reservation.condition, token) {
        (Condition::Hashlock(hash), Token::Secret(secret)) => {
            if secret.hash() != *hash {
                return Err(EscrowError::WrongSecret(*id));
            }
            if now_ms >= reservation.expiry_ms && !rules.claims_after_expiry {
                return Err(EscrowError::Expired { id: *id, expiry_ms: reservation.expiry_ms, now_ms });
            }
        }
        // A commit certificate executes at any time while the reservation is open:
        // the notaries committed, so executing is the outcome both parties agreed.
        (Condition::Notary { notaries, threshold }, Token::Certificate(certificate))
        | (Condition::Inspected { notaries, threshold }, Token::Certificate(certificate)) => certificate
            .verify(reservation.deal_id, Decision::Commit, notaries, *threshold)
            .map_err(|error| EscrowError::BadCertificate { id: *id, error })?,
        (Condition::Hashlock(_), _) => {
            return Err(EscrowError::WrongTokenKind { id: *id, condition: "hashlock", token: token_kind(token) })
        }
        (Condition::Notary { .. } | Condition::Inspected { .. }, _) => {
            return Err(EscrowError::WrongTokenKind { id: *id, condition: "notary", token: token_kind(token) })
        }
    }
    if matches!(reservation.condition, Condition::Inspected { .. }) {
        // Held, not paid: the asset stays in escrow until the verdict.
        let event = reservation.held(*signer, token.clone());
        context.set_state(id, ReservationState::Held);
        return Ok(event);
    }
    let event = reservation.executed(*signer, token.clone());
    let (to, asset) = (reservation.beneficiary, reservation.asset.clone());
    context.release(&to, &asset);
    context.set_state(id, ReservationState::Executed);
    Ok(event)
}

/// Applies the notaries' verdict to a held reservation. Anyone may present
/// it; the asset goes to the beneficiary on a release and back to the owner on
/// a reverse, whoever presents it. The same certificate resolves both legs of
/// the deal, so both end the same way.
pub fn resolve<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    id: &ReservationId,
    verdict: &Certificate,
) -> Result<EscrowEvent, EscrowError> {
    let reservation = context.reservation(id).ok_or(EscrowError::UnknownReservation(*id))?;
    if reservation.state != ReservationState::Held {
        return Err(EscrowError::NotHeld { id: *id, state: reservation.state });
    }
    if !verdict.decision.is_verdict() {
        return Err(EscrowError::NotAVerdict { id: *id, found: verdict.decision });
    }
    let Condition::Inspected { notaries, threshold } = &reservation.condition else {
        // Only an inspected reservation is ever held.
        return Err(EscrowError::WrongTokenKind { id: *id, condition: "notary", token: "verdict" });
    };
    verdict
        .verify(reservation.deal_id, verdict.decision, notaries, *threshold)
        .map_err(|error| EscrowError::BadCertificate { id: *id, error })?;
    let (event, to, state) = if verdict.decision == Decision::Release {
        let event = reservation.executed(*signer, Token::Certificate(verdict.clone()));
        (event, reservation.beneficiary, ReservationState::Executed)
    } else {
        (reservation.cancelled(*signer), reservation.owner, ReservationState::Cancelled)
    };
    let asset = reservation.asset.clone();
    context.release(&to, &asset);
    context.set_state(id, state);
    Ok(event)
}

pub fn cancel<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    id: &ReservationId,
    certificate: Option<&Certificate>,
    now_ms: u64,
) -> Result<EscrowEvent, EscrowError> {
    cancel_under(context, signer, id, certificate, now_ms, Rules::ACCOUNTS)
}

fn cancel_under<C: EscrowContext>(
    context: &mut C,
    signer: &Address,
    id: &ReservationId,
    certificate: Option<&Certificate>,
    now_ms: u64,
    rules: Rules,
) -> Result<EscrowEvent, EscrowError> {
    let reservation = open_reservation(context, id)?;
    if rules.named_keys_only && *signer != reservation.owner {
        return Err(EscrowError::NotOwner { owner: reservation.owner, signer: *signer });
    }
    // A lock time is judged by the chain's time, which may trail the clock.
    let now_ms = now_ms.saturating_sub(rules.lock_time_lag_ms);
    match (certificate, &reservation.condition) {
        (
            Some(certificate),
            Condition::Notary { notaries, threshold } | Condition::Inspected { notaries, threshold },
        ) => certificate
            .verify(reservation.deal_id, Decision::Abort, notaries, *threshold)
            .map_err(|error| EscrowError::BadCertificate { id: *id, error })?,
        (Some(_), Condition::Hashlock(_)) => {
            return Err(EscrowError::WrongTokenKind { id: *id, condition: "hashlock", token: "certificate" })
        }
        (None, _) => {
            if now_ms < reservation.expiry_ms {
                return Err(EscrowError::NotExpired { id: *id, expiry_ms: reservation.expiry_ms, now_ms });
            }
        }
    }
    // Anyone may cancel once cancelling is allowed; the asset always goes home.
    let event = reservation.cancelled(*signer);
    let (to, asset) = (reservation.owner, reservation.asset.clone());
    context.release(&to, &asset);
    context.set_state(id, ReservationState::Cancelled);
    Ok(event)
}
