// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowCore} from "./EscrowCore.sol";

/// @title Interlock's escrow for one EVM network.
/// @notice Applies the escrow rules of Interlock's core (`interlock_core::escrow`) to one
/// leg of a deal: `reserve` locks the leg's asset, `execute` pays it to the beneficiary
/// against the token (the hashlock secret, or a notary commit certificate), `cancel`
/// returns it to the owner after the expiry or against a notary abort certificate.
///
/// Storage holds one slot per reservation: a commitment to its terms while it is open,
/// then a tombstone (`EXECUTED` or `CANCELLED`) forever, so a reservation settles exactly
/// once and its deal leg can never be reserved again. The slot is keyed by the core's
/// reservation id, `sha256("interlock/reservation/v1" || dealId || leg)`, computed here on
/// reserve, so each leg of a deal is reserved at most once, under the same id the rest of
/// Interlock uses; the key binds the deal and the leg, so the commitment need not repeat
/// the deal id.
///
/// Every call passes back only what its commitment needs and it cannot derive: the owner
/// of a new reservation is its sender, a native amount is the value sent, the hashlock is
/// the sha256 of the secret presented, a notary condition is the hash of the set presented,
/// and cancel presents the beneficiary, keeper and condition as the one hash it commits
/// to. Small fields share one word (see `EscrowCore.PARTY_SHIFT`).
///
/// A deal with an inspection period settles its legs through `InterlockInspection`, the
/// module this escrow was deployed with: any call this contract has no entry point for
/// runs the module's code in this contract's storage (`delegatecall`). The inspected
/// legs' slots carry marks no entry point here accepts, so the two never settle each
/// other's reservations, and a deal without an inspection period pays nothing for the
/// feature: no selector here is added for it and no branch looks for it.
///
/// Tokens whose balances change other than by the amounts transferred (fee-on-transfer,
/// rebasing) are not supported: the contract pays out exactly what the terms name.
contract InterlockEscrow is EscrowCore {
    /// The inspection module (`InterlockInspection`) calls without an entry point here go to.
    address internal immutable INSPECTION;

    error NoInspectionModule(address module);
    /// Coin sent with no call: the escrow takes coin only with a reservation.
    error UnexpectedCoin(uint256 value);

    constructor(address inspection) {
        if (inspection.code.length == 0) revert NoInspectionModule(inspection);
        INSPECTION = inspection;
    }

    // ---------------------------------------------------------------- reserve

    /// Locks a hashlocked leg of the native coin, exactly the value sent; the sender is its
    /// owner. `offer` names the beneficiary (see `PARTY_SHIFT`), `keeper` may execute for it
    /// (zero: none), `hashlock` is sha256 of the secret.
    function reserve(bytes32 dealId, uint256 offer, address keeper, bytes32 hashlock) external payable {
        _requireMode(offer, MODE_HASHLOCK);
        uint8 kind = uint8(offer);
        if (kind != ASSET_NATIVE) revert InvalidAsset(kind, address(0));
        if (msg.value == 0) revert ZeroAmount();
        // The coin came with the call: nothing to take.
        _reserve(dealId, offer, keeper, hashlock, address(0), msg.value, 0);
    }

    /// Locks a hashlocked leg of an ERC-20 amount or an ERC-721 item, which the sender (its
    /// owner) approved this contract to take beforehand; otherwise as `reserve`.
    function reserveToken(
        bytes32 dealId,
        uint256 offer,
        address keeper,
        bytes32 hashlock,
        address token,
        uint256 value
    ) external {
        _requireMode(offer, MODE_HASHLOCK);
        uint8 kind = uint8(offer);
        if (kind == ASSET_NATIVE) revert InvalidAsset(kind, token);
        _requireAsset(kind, token, value);
        _reserve(dealId, offer, keeper, hashlock, token, value, 0);
        _takeToken(offer, token, value);
    }

    /// Locks a notary-mode leg's asset. `notarySet` is packed: the threshold (1 byte), the
    /// number of members (1 byte), each member's address (20 bytes), with 1 <= threshold
    /// <= members <= NOTARIES_MAX, distinct and non-zero; the condition committed is its
    /// keccak256 (`_notarySetHash`). A leg with an inspection period is reserved
    /// with `reserveInspected` instead (see `InterlockInspection`).
    function reserveNotary(
        bytes32 dealId,
        uint256 offer,
        address keeper,
        address token,
        uint256 value,
        bytes calldata notarySet
    ) external payable {
        _requireMode(offer, MODE_NOTARY);
        _requireValidNotarySet(notarySet);
        _requireAsset(uint8(offer), token, value);
        _reserve(dealId, offer, keeper, _notarySetHash(notarySet), token, value, 0);
        _takeToken(offer, token, value);
    }

    // ---------------------------------------------------------------- execute

    /// Pays a hashlocked reservation to its beneficiary, the sender, with the secret, before
    /// the expiry; the secret is published in `Executed`. `keeper` is the one the
    /// reservation names (zero: none).
    function execute(bytes32 id, bytes32 secret, uint256 held, address token, uint256 value, address keeper)
        external
    {
        _executeHashlock(id, secret, held, token, value, msg.sender, keeper);
    }

    /// `execute` sent by the reservation's keeper for its `beneficiary`, who is paid.
    function executeAsKeeper(
        bytes32 id,
        bytes32 secret,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary
    ) external {
        _executeHashlock(id, secret, held, token, value, beneficiary, msg.sender);
    }

    /// Pays a notary-mode reservation to its beneficiary. Only the beneficiary or its
    /// keeper, with a commit certificate: `certificate` is the notary set committed, as
    /// `reserveNotary` took it, followed by signatures r||s||v (65 bytes each, v = 27 or
    /// 28) by distinct members of that set, at least its threshold of them. A
    /// certificate executes while the reservation is open, even past the backstop: the
    /// notaries committed, which is what both parties agreed to.
    function executeNotary(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata certificate
    ) external {
        if (beneficiary == address(0)) beneficiary = msg.sender;
        (bytes calldata set, bytes calldata signatures) = _splitCertificate(certificate);
        bytes32 id = _requireOpenNotary(dealId, held, token, value, beneficiary, keeper, set);
        _requireExecutor(id, beneficiary, keeper);
        _requireCertificate(dealId, DECISION_COMMIT, set, signatures);

        _store(id, EXECUTED);
        emit ExecutedByCertificate(id);
        _payOut(held, token, value, beneficiary, true);
    }

    // ---------------------------------------------------------------- cancel

    /// Returns the asset to its owner once the expiry (hashlock) or backstop expiry
    /// (notary) has passed. Anyone may call it; the asset always goes to the owner
    /// `held` names. `parties` is `partiesHash(beneficiary, keeper, condition)`.
    /// (This and `cancelNotary` are written out, not shared with the inspection
    /// module's cancels: sharing them changed what the optimizer inlines and cost the
    /// plain entry points 7 to 31 gas, measured.)
    function cancel(bytes32 id, uint256 held, address token, uint256 value, bytes32 parties) external {
        held = _withSender(held);
        _requireOpen(id, _commitment(held, token, value, parties));
        uint256 expiryMs = _expiryMs(held);
        uint256 nowMs = _nowMs();
        if (nowMs < expiryMs) revert NotExpired(id, uint64(expiryMs), nowMs);

        _store(id, CANCELLED);
        emit Cancelled(id);
        _payOut(held, token, value, _party(held), false);
    }

    /// Returns a notary-mode reservation's asset to its owner at any time, against an
    /// abort certificate (same form as `executeNotary`'s). Anyone may call it.
    function cancelNotary(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata certificate
    ) external {
        held = _withSender(held);
        (bytes calldata set, bytes calldata signatures) = _splitCertificate(certificate);
        bytes32 id = _requireOpenNotary(dealId, held, token, value, beneficiary, keeper, set);
        _requireCertificate(dealId, DECISION_ABORT, set, signatures);

        _store(id, CANCELLED);
        emit Cancelled(id);
        _payOut(held, token, value, _party(held), false);
    }

    // ---------------------------------------------------------------- the module

    /// Coin sent with no call is refused: nothing here could ever return it.
    receive() external payable {
        revert UnexpectedCoin(msg.value);
    }

    /// Any other call (the inspected legs' entry points) runs `InterlockInspection`'s code
    /// on this contract's storage and balance, with this call's sender and value. The
    /// module refuses what it has no entry point for.
    fallback() external payable {
        address module = INSPECTION;
        assembly ("memory-safe") {
            // Past the free pointer, never allocated: the call ends here.
            let buffer := mload(0x40)
            calldatacopy(buffer, 0, calldatasize())
            let ok := delegatecall(gas(), module, buffer, calldatasize(), 0, 0)
            returndatacopy(buffer, 0, returndatasize())
            if iszero(ok) { revert(buffer, returndatasize()) }
            return(buffer, returndatasize())
        }
    }

    // ---------------------------------------------------------------- internals

    /// Executes a hashlocked reservation whose beneficiary or keeper is the sender: the
    /// commitment check proves the sender is the one the owner named.
    function _executeHashlock(
        bytes32 id,
        bytes32 secret,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper
    ) private {
        // No mode check: the held word's mode is committed, and no secret's sha256 equals
        // a notary-mode reservation's condition (a hash of its notary set).
        _requireOpen(id, _commitment(held, token, value, _partiesHash(beneficiary, keeper, _sha256(secret))));
        uint256 expiryMs = _expiryMs(held);
        uint256 nowMs = _nowMs();
        if (nowMs >= expiryMs) revert Expired(id, uint64(expiryMs), nowMs);

        _store(id, EXECUTED);
        emit Executed(id, secret);
        _payOut(held, token, value, beneficiary, true);
    }

    /// The id of an open notary-mode reservation of `dealId` with these terms and notary
    /// set; reverts with the reason if there is none.
    function _requireOpenNotary(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata set
    ) private view returns (bytes32 id) {
        bytes32 committed;
        (id, committed) = _notaryCommitment(dealId, held, token, value, beneficiary, keeper, set);
        _requireOpen(id, committed);
    }
}
