// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title Interlock's escrow for one EVM network.
/// @notice Applies the escrow rules of Interlock's core (`interlock_core::escrow`) to one
/// leg of a deal: `reserve` locks the leg's asset, `execute` pays it to the beneficiary
/// against the token (the hashlock secret, or a notary commit certificate), `cancel`
/// returns it to the owner after the expiry or against a notary abort certificate.
///
/// Storage holds one slot per reservation: a commitment (keccak256 of the ABI-encoded
/// `Terms`) while it is open, then a tombstone (`EXECUTED` or `CANCELLED`) forever, so a
/// reservation settles exactly once and its deal leg can never be reserved again. Every
/// call passes the terms back in calldata and the contract checks them against the
/// commitment. The slot is keyed by the core's reservation id,
/// `sha256("interlock/reservation/v1" || dealId || leg)`, so each leg of a deal is
/// reserved at most once here, under the same id the rest of Interlock uses.
///
/// Tokens whose balances change other than by the amounts transferred (fee-on-transfer,
/// rebasing) are not supported: the contract pays out exactly what the terms name.
contract InterlockEscrow {
    using SafeERC20 for IERC20;

    /// One leg's reservation, as the owner locked it. Callers pass it back to execute or
    /// cancel; only its commitment is stored.
    struct Terms {
        /// sha256 of the deal's canonical terms (`interlock_core::DealId`).
        bytes32 dealId;
        /// `LEG_PAYMENT` or `LEG_DELIVERY` (`interlock_core::LegKind::tag`).
        uint8 leg;
        /// `MODE_HASHLOCK` or `MODE_NOTARY`.
        uint8 mode;
        /// `ASSET_NATIVE`, `ASSET_ERC20` or `ASSET_ERC721`.
        uint8 assetKind;
        /// The ERC-20 or ERC-721 contract; zero for the native coin.
        address token;
        /// The amount in the asset's smallest unit, or the ERC-721 token id.
        uint256 value;
        /// Locks the asset and gets it back on cancel.
        address owner;
        /// Receives the asset on execute.
        address beneficiary;
        /// May execute for the beneficiary (the asset still goes to the beneficiary); zero: none.
        address keeper;
        /// Hashlock mode: sha256 of the 32-byte secret. Notary mode: `notarySetHash`.
        bytes32 condition;
        /// Hashlock mode: execute before, cancel from this time. Notary mode: the backstop
        /// expiry, from which anyone may cancel without a certificate. Unix milliseconds.
        uint64 expiryMs;
    }

    uint8 public constant LEG_PAYMENT = 1;
    uint8 public constant LEG_DELIVERY = 2;
    uint8 public constant MODE_HASHLOCK = 1;
    uint8 public constant MODE_NOTARY = 2;
    uint8 public constant ASSET_NATIVE = 0;
    uint8 public constant ASSET_ERC20 = 1;
    uint8 public constant ASSET_ERC721 = 2;
    /// `interlock_core::Decision::code`.
    uint8 public constant DECISION_COMMIT = 1;
    uint8 public constant DECISION_ABORT = 2;
    /// `interlock_core::limits::NOTARIES_MAX`; also bounds the signatures of a certificate.
    uint256 public constant NOTARIES_MAX = 16;

    /// Tombstones. A commitment is a keccak256 output and never equals either.
    bytes32 public constant EXECUTED = bytes32(uint256(1));
    bytes32 public constant CANCELLED = bytes32(uint256(2));

    bytes24 private constant RESERVATION_ID_TAG = "interlock/reservation/v1";
    bytes32 private constant DECISION_TYPEHASH = keccak256("Decision(bytes32 dealId,uint8 decision)");
    /// `EIP712Domain(string name,string version)` with name "Interlock" and version "1". It
    /// names no chain and no contract on purpose: one certificate settles both legs of a
    /// deal, on two different networks (`interlock_core::eip712_domain_separator`).
    bytes32 public immutable DOMAIN_SEPARATOR;

    /// Reservation id => commitment to its `Terms`, or a tombstone.
    mapping(bytes32 reservationId => bytes32 slot) public reservations;

    /// A leg was reserved. A watcher that knows the deal's terms recomputes `commitment`
    /// (see `commitment`) to check that the reservation carries exactly those terms.
    event Reserved(bytes32 indexed dealId, bytes32 indexed reservationId, uint8 leg, bytes32 commitment);
    /// A hashlocked reservation was executed; `secret` is the revealed preimage.
    event Executed(bytes32 indexed dealId, bytes32 indexed reservationId, uint8 leg, bytes32 secret);
    /// A notary-mode reservation was executed with a commit certificate.
    event ExecutedByCertificate(bytes32 indexed dealId, bytes32 indexed reservationId, uint8 leg);
    /// A reservation's asset went back to its owner.
    event Cancelled(bytes32 indexed dealId, bytes32 indexed reservationId, uint8 leg);

    error NotOwner(address owner, address sender);
    error SelfDealing(address owner);
    error ZeroBeneficiary();
    error InvalidLeg(uint8 leg);
    error WrongMode(uint8 expected, uint8 found);
    error InvalidAsset(uint8 assetKind, address token);
    error ZeroAmount();
    error WrongNativeValue(uint256 expected, uint256 sent);
    error ExpiryInPast(uint64 expiryMs, uint256 nowMs);
    error InvalidNotarySet(uint256 threshold, uint256 count);
    error NotarySetMismatch(bytes32 committed, bytes32 presented);
    error AlreadyReserved(bytes32 reservationId);
    error UnknownReservation(bytes32 reservationId);
    error TermsMismatch(bytes32 reservationId);
    error AlreadyExecuted(bytes32 reservationId);
    error AlreadyCancelled(bytes32 reservationId);
    error NotBeneficiary(bytes32 reservationId, address beneficiary, address sender);
    error WrongSecret(bytes32 reservationId);
    error Expired(bytes32 reservationId, uint64 expiryMs, uint256 nowMs);
    error NotExpired(bytes32 reservationId, uint64 expiryMs, uint256 nowMs);
    error MalformedCertificate(uint256 signaturesLength);
    error BadSignature(uint256 index);
    error SignerNotInSet(uint256 index, address signer);
    error DuplicateSigner(uint256 index, address signer);
    error BelowThreshold(uint256 signers, uint256 threshold);
    error NativeTransferFailed(address to);

    constructor() {
        DOMAIN_SEPARATOR = keccak256(
            abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("Interlock"), keccak256("1"))
        );
    }

    // ---------------------------------------------------------------- reserve

    /// Locks a hashlocked leg's asset. The caller is the owner; a native-coin leg sends
    /// exactly `value`, a token leg approved this contract beforehand.
    function reserve(Terms calldata terms) external payable {
        _requireMode(terms, MODE_HASHLOCK);
        _reserve(terms);
    }

    /// Locks a notary-mode leg's asset. `terms.condition` must be
    /// `notarySetHash(notaries, threshold)`, with 1 <= threshold <= notaries <= NOTARIES_MAX,
    /// distinct and non-zero.
    function reserveNotary(Terms calldata terms, address[] calldata notaries, uint8 threshold) external payable {
        _requireMode(terms, MODE_NOTARY);
        _requireValidNotarySet(notaries, threshold);
        _requireNotarySet(terms, notaries, threshold);
        _reserve(terms);
    }

    // ---------------------------------------------------------------- execute

    /// Pays a hashlocked reservation to its beneficiary. Only the beneficiary or its
    /// keeper, with the secret, before the expiry; the secret is published in `Executed`.
    function execute(Terms calldata terms, bytes32 secret) external {
        bytes32 id = _requireOpen(terms);
        _requireExecutor(id, terms);
        _requireMode(terms, MODE_HASHLOCK);
        if (sha256(abi.encodePacked(secret)) != terms.condition) revert WrongSecret(id);
        uint256 nowMs = _nowMs();
        if (nowMs >= terms.expiryMs) revert Expired(id, terms.expiryMs, nowMs);

        reservations[id] = EXECUTED;
        emit Executed(terms.dealId, id, terms.leg, secret);
        _payOut(terms, terms.beneficiary, true);
    }

    /// Pays a notary-mode reservation to its beneficiary. Only the beneficiary or its
    /// keeper, with a commit certificate: `signatures` is the concatenation of r||s||v
    /// (65 bytes each, v = 27 or 28) by distinct members of the committed notary set,
    /// at least `threshold` of them. A certificate executes while the reservation is
    /// open, even past the backstop: the notaries committed, which is what both
    /// parties agreed to.
    function executeNotary(
        Terms calldata terms,
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        bytes32 id = _requireOpen(terms);
        _requireExecutor(id, terms);
        _requireMode(terms, MODE_NOTARY);
        _requireNotarySet(terms, notaries, threshold);
        _requireCertificate(terms.dealId, DECISION_COMMIT, notaries, threshold, signatures);

        reservations[id] = EXECUTED;
        emit ExecutedByCertificate(terms.dealId, id, terms.leg);
        _payOut(terms, terms.beneficiary, true);
    }

    // ---------------------------------------------------------------- cancel

    /// Returns the asset to its owner once the expiry (hashlock) or backstop expiry
    /// (notary) has passed. Anyone may call it; the asset always goes to the owner.
    function cancel(Terms calldata terms) external {
        bytes32 id = _requireOpen(terms);
        uint256 nowMs = _nowMs();
        if (nowMs < terms.expiryMs) revert NotExpired(id, terms.expiryMs, nowMs);

        reservations[id] = CANCELLED;
        emit Cancelled(terms.dealId, id, terms.leg);
        _payOut(terms, terms.owner, false);
    }

    /// Returns a notary-mode reservation's asset to its owner at any time, against an
    /// abort certificate (same form as `executeNotary`'s). Anyone may call it.
    function cancelNotary(
        Terms calldata terms,
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        bytes32 id = _requireOpen(terms);
        _requireMode(terms, MODE_NOTARY);
        _requireNotarySet(terms, notaries, threshold);
        _requireCertificate(terms.dealId, DECISION_ABORT, notaries, threshold, signatures);

        reservations[id] = CANCELLED;
        emit Cancelled(terms.dealId, id, terms.leg);
        _payOut(terms, terms.owner, false);
    }

    // ---------------------------------------------------------------- views

    /// The core's reservation id: sha256("interlock/reservation/v1" || dealId || leg).
    function reservationId(bytes32 dealId, uint8 leg) public pure returns (bytes32) {
        return sha256(abi.encodePacked(RESERVATION_ID_TAG, dealId, leg));
    }

    /// What the reservation's slot holds while it is open: keccak256(abi.encode(terms)).
    function commitment(Terms calldata terms) public pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            // `Terms` is a static struct: its eleven words sit in calldata at `terms`,
            // exactly as abi.encode(terms) would lay them out.
            let buffer := mload(0x40)
            calldatacopy(buffer, terms, 0x160)
            hash := keccak256(buffer, 0x160)
        }
    }

    /// A notary-mode reservation's condition: keccak256(abi.encode(notaries, threshold)).
    function notarySetHash(address[] calldata notaries, uint8 threshold) public pure returns (bytes32) {
        return keccak256(abi.encode(notaries, threshold));
    }

    /// The EIP-712 digest the notaries sign (`interlock_core::decision_digest`).
    function decisionDigest(bytes32 dealId, uint8 decision) public view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(DOMAIN_SEPARATOR, keccak256(abi.encode(DECISION_TYPEHASH, dealId, decision)));
    }

    // ---------------------------------------------------------------- internals

    function _reserve(Terms calldata terms) private {
        if (terms.owner != msg.sender) revert NotOwner(terms.owner, msg.sender);
        if (terms.beneficiary == address(0)) revert ZeroBeneficiary();
        if (terms.beneficiary == terms.owner || terms.keeper == terms.owner) revert SelfDealing(terms.owner);
        if (terms.leg != LEG_PAYMENT && terms.leg != LEG_DELIVERY) revert InvalidLeg(terms.leg);
        uint256 nowMs = _nowMs();
        if (terms.expiryMs <= nowMs) revert ExpiryInPast(terms.expiryMs, nowMs);
        _requireAsset(terms);
        bytes32 id = reservationId(terms.dealId, terms.leg);
        if (reservations[id] != 0) revert AlreadyReserved(id);

        bytes32 committed = commitment(terms);
        reservations[id] = committed;
        emit Reserved(terms.dealId, id, terms.leg, committed);
        // Interactions last. A token that calls back finds the reservation recorded.
        if (terms.assetKind == ASSET_ERC20) {
            IERC20(terms.token).safeTransferFrom(msg.sender, address(this), terms.value);
        } else if (terms.assetKind == ASSET_ERC721) {
            IERC721(terms.token).transferFrom(msg.sender, address(this), terms.value);
        }
    }

    function _requireAsset(Terms calldata terms) private view {
        uint8 kind = terms.assetKind;
        if (kind == ASSET_NATIVE) {
            if (terms.token != address(0)) revert InvalidAsset(kind, terms.token);
            if (terms.value == 0) revert ZeroAmount();
            if (msg.value != terms.value) revert WrongNativeValue(terms.value, msg.value);
            return;
        }
        if ((kind != ASSET_ERC20 && kind != ASSET_ERC721) || terms.token == address(0)) {
            revert InvalidAsset(kind, terms.token);
        }
        if (kind == ASSET_ERC20 && terms.value == 0) revert ZeroAmount();
        if (msg.value != 0) revert WrongNativeValue(0, msg.value);
    }

    /// The reservation id of open `terms`; reverts with the reason if they are not open.
    function _requireOpen(Terms calldata terms) private view returns (bytes32 id) {
        id = reservationId(terms.dealId, terms.leg);
        bytes32 stored = reservations[id];
        if (stored != commitment(terms)) {
            if (stored == 0) revert UnknownReservation(id);
            if (stored == EXECUTED) revert AlreadyExecuted(id);
            if (stored == CANCELLED) revert AlreadyCancelled(id);
            revert TermsMismatch(id);
        }
    }

    function _requireExecutor(bytes32 id, Terms calldata terms) private view {
        // `msg.sender` is never zero, so a zero keeper matches no one.
        if (msg.sender != terms.beneficiary && msg.sender != terms.keeper) {
            revert NotBeneficiary(id, terms.beneficiary, msg.sender);
        }
    }

    function _requireMode(Terms calldata terms, uint8 mode) private pure {
        if (terms.mode != mode) revert WrongMode(mode, terms.mode);
    }

    function _requireNotarySet(Terms calldata terms, address[] calldata notaries, uint8 threshold) private pure {
        bytes32 presented = notarySetHash(notaries, threshold);
        if (presented != terms.condition) revert NotarySetMismatch(terms.condition, presented);
    }

    function _requireValidNotarySet(address[] calldata notaries, uint8 threshold) private pure {
        uint256 count = notaries.length;
        if (threshold == 0 || threshold > count || count > NOTARIES_MAX) revert InvalidNotarySet(threshold, count);
        for (uint256 i = 0; i < count; ++i) {
            if (notaries[i] == address(0)) revert InvalidNotarySet(threshold, count);
            for (uint256 j = 0; j < i; ++j) {
                if (notaries[j] == notaries[i]) revert InvalidNotarySet(threshold, count);
            }
        }
    }

    /// At least `threshold` distinct members of `notaries` signed (dealId, decision);
    /// every signature present must be valid and by a member.
    function _requireCertificate(
        bytes32 dealId,
        uint8 decision,
        address[] calldata notaries,
        uint256 threshold,
        bytes calldata signatures
    ) private view {
        uint256 length = signatures.length;
        if (length % 65 != 0 || length > 65 * NOTARIES_MAX) revert MalformedCertificate(length);
        bytes32 digest = decisionDigest(dealId, decision);
        uint256 signers = length / 65;
        // Bit i set: notaries[i] has signed. The set holds at most NOTARIES_MAX members.
        uint256 seen = 0;
        for (uint256 index = 0; index < signers; ++index) {
            address signer = _recover(digest, signatures[index * 65:index * 65 + 65], index);
            uint256 member = _indexOf(notaries, signer);
            if (member == type(uint256).max) revert SignerNotInSet(index, signer);
            uint256 bit = 1 << member;
            if (seen & bit != 0) revert DuplicateSigner(index, signer);
            seen |= bit;
        }
        if (signers < threshold) revert BelowThreshold(signers, threshold);
    }

    /// The address that signed `digest` with the 65-byte r||s||v `signature`; OpenZeppelin's
    /// checks refuse malleable (high-s) and malformed signatures.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private pure returns (address) {
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, v, r, s);
        if (error != ECDSA.RecoverError.NoError) revert BadSignature(index);
        return signer;
    }

    function _indexOf(address[] calldata notaries, address signer) private pure returns (uint256) {
        for (uint256 i = 0; i < notaries.length; ++i) {
            if (notaries[i] == signer) return i;
        }
        return type(uint256).max;
    }

    /// Moves the reserved asset out of escrow to `to`. On execute an ERC-721 goes by
    /// `safeTransferFrom`, so a beneficiary contract that cannot hold it refuses it (and the
    /// reservation can still be cancelled later); on cancel it goes by `transferFrom`, so an
    /// owner can always get back what it locked.
    function _payOut(Terms calldata terms, address to, bool checkReceiver) private {
        uint8 kind = terms.assetKind;
        if (kind == ASSET_NATIVE) {
            bool sent;
            uint256 amount = terms.value;
            assembly ("memory-safe") {
                // No return data is copied: a recipient cannot make us pay for a large one.
                sent := call(gas(), to, amount, 0, 0, 0, 0)
            }
            if (!sent) revert NativeTransferFailed(to);
        } else if (kind == ASSET_ERC20) {
            IERC20(terms.token).safeTransfer(to, terms.value);
        } else if (checkReceiver) {
            IERC721(terms.token).safeTransferFrom(address(this), to, terms.value);
        } else {
            IERC721(terms.token).transferFrom(address(this), to, terms.value);
        }
    }

    function _nowMs() private view returns (uint256) {
        return block.timestamp * 1000;
    }
}
