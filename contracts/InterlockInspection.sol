// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowCore} from "./EscrowCore.sol";

/// @title The inspected legs of Interlock's escrow.
/// @notice A deal with an inspection period reserves its legs in mode `MODE_INSPECTED`. A
/// commit certificate then *holds* each asset in escrow for its beneficiary, and only
/// the notaries' verdict moves it: `releaseInspectedByNotaries` pays the beneficiary,
/// `reverseInspectedByNotaries` the owner. A held leg never lapses: neither its backstop
/// expiry nor an abort certificate cancels it. Until it is held, an inspected leg goes
/// back to its owner as a plain notary-mode leg does: on an abort certificate, or by
/// anyone after its backstop expiry.
///
/// This contract is deployed once and named in `InterlockEscrow`'s constructor; the
/// escrow delegates to it every call it has no entry point for, so these functions run
/// in the escrow's storage, hold the escrow's balance and emit the escrow's events.
/// Called directly, it is an escrow of its own for inspected legs only, which no
/// Interlock network names: nothing reserved there is lost (a backstop expiry returns
/// it), and nothing there touches any escrow's reservations. Its code depends on no
/// address, so one artifact describes every deployment of it.
///
/// An inspected reservation's slot holds its commitment XOR `INSPECTION_MARK` while open,
/// XOR `HELD_MARK` while held, and a tombstone once its verdict was carried out. The
/// escrow's own entry points match only unmarked commitments, these only marked ones.
///
/// The certificate entry points take exactly `executeNotary`'s arguments: one encoder
/// serves them all, and a follower reads the signatures of any of them alike.
contract InterlockInspection is EscrowCore {
    /// Locks an inspected leg's asset; otherwise as the escrow's `reserveNotary`, whose
    /// arguments it takes: `offer` must name `MODE_INSPECTED`.
    function reserveInspected(
        bytes32 dealId,
        uint256 offer,
        address keeper,
        address token,
        uint256 value,
        bytes calldata notarySet
    ) external payable {
        _requireMode(offer, MODE_INSPECTED);
        _requireValidNotarySet(notarySet);
        _requireAsset(uint8(offer), token, value);
        _reserve(dealId, offer, keeper, _notarySetHash(notarySet), token, value, INSPECTION_MARK);
        _takeToken(offer, token, value);
    }

    /// Holds an open inspected reservation for its beneficiary against a commit
    /// certificate: as the escrow's `executeNotary` (the beneficiary or its keeper sends
    /// it, even past the backstop), but the asset stays in escrow until the verdict.
    function holdInspectedByNotaries(
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
        (bytes32 id, bytes32 committed) = _requireOpenInspected(dealId, held, token, value, beneficiary, keeper, set);
        _requireExecutor(id, beneficiary, keeper);
        _requireCertificate(dealId, DECISION_COMMIT, set, signatures);

        _store(id, committed ^ HELD_MARK);
        emit Held(id);
    }

    /// Returns an open (not held) inspected reservation's asset to its owner against an
    /// abort certificate; as the escrow's `cancelNotary`. Anyone may call it.
    function cancelInspectedByNotaries(
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
        (bytes32 id,) = _requireOpenInspected(dealId, held, token, value, beneficiary, keeper, set);
        _requireCertificate(dealId, DECISION_ABORT, set, signatures);
        _returnToOwner(id, held, token, value);
    }

    /// Returns an open (not held) inspected reservation's asset to its owner once its
    /// backstop expiry has passed; as the escrow's `cancel`. Anyone may call it.
    function cancelInspected(bytes32 id, uint256 held, address token, uint256 value, bytes32 parties) external {
        held = _withSender(held);
        _requireOpen(id, _commitment(held, token, value, parties) ^ INSPECTION_MARK);
        uint256 expiryMs = _expiryMs(held);
        uint256 nowMs = _nowMs();
        if (nowMs < expiryMs) revert NotExpired(id, uint64(expiryMs), nowMs);
        _returnToOwner(id, held, token, value);
    }

    // ---------------------------------------------------------------- verdicts
    //
    // A held reservation moves on the notaries' verdict: a release pays the beneficiary,
    // a reverse pays the owner back. Anyone may present it (a keeper does when the window
    // closes); the asset goes where the verdict says, whoever sends it. `held` names the
    // owner, `beneficiary` is given, and `certificate` certifies the verdict. The same
    // verdict resolves both legs of the deal, and the slot then holds a tombstone: a
    // verdict is final.

    /// Pays a held reservation to its beneficiary on a release verdict.
    function releaseInspectedByNotaries(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata certificate
    ) external {
        _resolve(dealId, held, token, value, beneficiary, keeper, certificate, DECISION_RELEASE);
    }

    /// Pays a held reservation back to its owner on a reverse verdict.
    function reverseInspectedByNotaries(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata certificate
    ) external {
        _resolve(dealId, held, token, value, beneficiary, keeper, certificate, DECISION_REVERSE);
    }

    // ---------------------------------------------------------------- internals

    /// Carries out `verdict` (release or reverse) on a held reservation.
    function _resolve(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata certificate,
        uint8 verdict
    ) private {
        (bytes calldata set, bytes calldata signatures) = _splitCertificate(certificate);
        bytes32 id = _requireHeld(dealId, held, token, value, beneficiary, keeper, set);
        _requireCertificate(dealId, verdict, set, signatures);
        if (verdict == DECISION_REVERSE) {
            _returnToOwner(id, held, token, value);
        } else {
            _store(id, EXECUTED);
            emit Released(id);
            // By `transferFrom` for an ERC-721: a verdict cannot be refused by its recipient.
            _payOut(held, token, value, beneficiary, false);
        }
    }

    /// Settles reservation `id` by paying its asset back to the owner `held` names.
    function _returnToOwner(bytes32 id, uint256 held, address token, uint256 value) private {
        _store(id, CANCELLED);
        emit Cancelled(id);
        _payOut(held, token, value, _party(held), false);
    }

    /// The id of the open inspected reservation of `dealId` with these terms and notary
    /// set, and its commitment; reverts with the reason if there is none (a held one
    /// reads as `TermsMismatch`).
    function _requireOpenInspected(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata set
    ) private view returns (bytes32 id, bytes32 committed) {
        (id, committed) = _notaryCommitment(dealId, held, token, value, beneficiary, keeper, set);
        _requireOpen(id, committed ^ INSPECTION_MARK);
    }

    /// The id of the reservation of `dealId` held with these terms and notary set;
    /// reverts with the reason if there is none (`NotHeld` if it is still open).
    function _requireHeld(
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
        bytes32 stored = _load(id);
        if (stored != committed ^ HELD_MARK) {
            if (stored == committed ^ INSPECTION_MARK) revert NotHeld(id);
            _requireOpen(id, committed ^ INSPECTION_MARK);
        }
    }
}
