// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title What Interlock's escrow and its inspection module share.
/// @notice The storage layout (one slot per reservation, at its id), the leg word, the
/// commitment, the notary certificate check, the events and the errors of
/// `InterlockEscrow`. `InterlockInspection` runs in the escrow's storage (the escrow
/// delegates to it the calls it has no entry point for), so both must read and write
/// reservations alike: both inherit them from here. Neither contract declares a
/// state variable, so their storage cannot drift apart.
abstract contract EscrowCore {
    using SafeERC20 for IERC20;

    uint8 internal constant LEG_PAYMENT = 1;
    uint8 internal constant LEG_DELIVERY = 2;
    uint8 internal constant MODE_HASHLOCK = 1;
    uint8 internal constant MODE_NOTARY = 2;
    /// Notary mode with an inspection period: a commit certificate holds the asset
    /// (`Held`) and only a verdict pays it out. Its legs are reserved and settled by
    /// `InterlockInspection`, never by the plain entry points, which require modes 1
    /// and 2 or find no commitment they match (see `INSPECTION_MARK`).
    uint8 internal constant MODE_INSPECTED = 3;
    uint8 internal constant ASSET_NATIVE = 0;
    uint8 internal constant ASSET_ERC20 = 1;
    uint8 internal constant ASSET_ERC721 = 2;
    /// `interlock_core::Decision::code`.
    uint8 internal constant DECISION_COMMIT = 1;
    uint8 internal constant DECISION_ABORT = 2;
    uint8 internal constant DECISION_RELEASE = 3;
    uint8 internal constant DECISION_REVERSE = 4;
    /// `interlock_core::limits::NOTARIES_MAX`; also bounds the signatures of a certificate.
    uint256 internal constant NOTARIES_MAX = 16;
    /// Half the secp256k1 group order: a signature's s above it is refused.
    uint256 internal constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// Tombstones. A commitment is a keccak256 output and never equals either.
    bytes32 internal constant EXECUTED = bytes32(uint256(1));
    bytes32 internal constant CANCELLED = bytes32(uint256(2));
    /// An open inspected reservation's slot is its commitment XOR this mark, a held
    /// one's its commitment XOR `HELD_MARK`. Like a commitment each equals no
    /// tombstone, and neither is the commitment, so no plain entry point (execute,
    /// cancel, with or without a certificate) accepts an inspected reservation: only
    /// `InterlockInspection`'s, which look for the marks, settle it.
    bytes32 internal constant INSPECTION_MARK = keccak256("interlock/escrow/inspection");
    bytes32 internal constant HELD_MARK = keccak256("interlock/escrow/held");

    /// A leg word packs one party's address with the leg's small fields:
    /// bits 255..96 the address, 95..32 the expiry (unix milliseconds; hashlock mode:
    /// execute before, cancel from this time; notary modes: the backstop expiry, from
    /// which anyone may cancel an open reservation without a certificate), 23..16 the
    /// leg (`LEG_*`), 15..8 the mode (`MODE_*`), 7..0 the asset kind (`ASSET_*`). An
    /// `offer` (reserve) names the beneficiary, a `held` word (execute, cancel) the
    /// owner; the rest is the same.
    uint256 internal constant PARTY_SHIFT = 96;
    uint256 internal constant EXPIRY_SHIFT = 32;
    uint256 internal constant LEG_SHIFT = 16;
    uint256 internal constant MODE_SHIFT = 8;
    /// The bits below the party address.
    uint256 internal constant FIELDS_MASK = (1 << 96) - 1;

    bytes24 internal constant RESERVATION_ID_TAG = "interlock/reservation/v1";
    bytes32 internal constant DECISION_TYPEHASH = keccak256("Decision(bytes32 dealId,uint8 decision)");
    /// `EIP712Domain(string name,string version)` with name "Interlock" and version "1". It
    /// names no chain and no contract on purpose: one certificate settles both legs of a
    /// deal, on two different networks (`interlock_core::eip712_domain_separator`).
    bytes32 internal immutable DOMAIN_SEPARATOR;

    // Storage: the slot numbered by a reservation id holds the commitment to its terms, or
    // a tombstone. A reservation id is a sha256 output, so it needs no hashing into a
    // mapping's slot, and the contract has no other storage for it to collide with.

    /// A leg was reserved. A watcher that knows the deal's terms recomputes `commitment`
    /// to check that the reservation carries exactly those terms; the id names the deal
    /// and the leg.
    event Reserved(bytes32 indexed reservationId, bytes32 commitment);
    /// A hashlocked reservation was executed; `secret` is the revealed preimage.
    event Executed(bytes32 indexed reservationId, bytes32 secret);
    /// A notary-mode reservation was executed with a commit certificate.
    event ExecutedByCertificate(bytes32 indexed reservationId);
    /// A reservation's asset went back to its owner (after `Held`: on a reverse verdict).
    event Cancelled(bytes32 indexed reservationId);
    /// An inspected reservation was executed with a commit certificate: its asset is
    /// held for the beneficiary until the notaries' verdict.
    event Held(bytes32 indexed reservationId);
    /// A held reservation's asset went to its beneficiary on a release verdict.
    event Released(bytes32 indexed reservationId);

    error SelfDealing(address owner);
    error ZeroBeneficiary();
    error InvalidLeg(uint8 leg);
    error WrongMode(uint8 expected, uint8 found);
    error InvalidAsset(uint8 assetKind, address token);
    error ZeroAmount();
    error WrongNativeValue(uint256 expected, uint256 sent);
    error ExpiryInPast(uint64 expiryMs, uint256 nowMs);
    error InvalidNotarySet(uint256 threshold, uint256 count);
    error AlreadyReserved(bytes32 reservationId);
    error UnknownReservation(bytes32 reservationId);
    /// The terms presented, with the condition derived from the secret or notary set
    /// presented, are not the ones committed: a wrong secret reads as this too.
    error TermsMismatch(bytes32 reservationId);
    error AlreadyExecuted(bytes32 reservationId);
    error AlreadyCancelled(bytes32 reservationId);
    error NotBeneficiary(bytes32 reservationId, address beneficiary, address sender);
    error Expired(bytes32 reservationId, uint64 expiryMs, uint256 nowMs);
    error NotExpired(bytes32 reservationId, uint64 expiryMs, uint256 nowMs);
    error MalformedCertificate(uint256 signaturesLength);
    error BadSignature(uint256 index);
    error SignerNotInSet(uint256 index, address signer);
    error DuplicateSigner(uint256 index, address signer);
    error BelowThreshold(uint256 signers, uint256 threshold);
    error NativeTransferFailed(address to);
    /// A verdict presented for a reservation that is open, not held.
    error NotHeld(bytes32 reservationId);

    constructor() {
        DOMAIN_SEPARATOR = keccak256(
            abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("Interlock"), keccak256("1"))
        );
    }

    // ---------------------------------------------------------------- views

    /// The core's reservation id: sha256("interlock/reservation/v1" || dealId || leg).
    function _reservationId(bytes32 dealId, uint8 leg) internal view returns (bytes32 id) {
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            mstore(buffer, RESERVATION_ID_TAG)
            mstore(add(buffer, 24), dealId)
            mstore8(add(buffer, 56), leg)
            if iszero(staticcall(gas(), 2, buffer, 57, 0, 0x20)) { revert(0, 0) }
            id := mload(0)
        }
    }

    /// What an open reservation's slot holds: keccak256(abi.encode(held, token, value,
    /// parties)). `held` packs the owner, expiry, leg, mode and asset kind; `token` is zero
    /// for the native coin; `value` is the amount or the ERC-721 token id; `parties` is
    /// `partiesHash`.
    function _commitment(uint256 held, address token, uint256 value, bytes32 parties)
        internal
        pure
        returns (bytes32 hash)
    {
        assembly ("memory-safe") {
            // Scratch memory past the free pointer, never allocated.
            let buffer := mload(0x40)
            mstore(buffer, held)
            mstore(add(buffer, 0x20), token)
            mstore(add(buffer, 0x40), value)
            mstore(add(buffer, 0x60), parties)
            hash := keccak256(buffer, 0x80)
        }
    }

    /// Who may execute a reservation, and with what: keccak256(abi.encode(beneficiary,
    /// keeper, condition)); the condition is sha256 of the secret (hashlock mode) or
    /// `notarySetHash` (notary mode).
    function _partiesHash(address beneficiary, address keeper, bytes32 condition) internal pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            mstore(buffer, beneficiary)
            mstore(add(buffer, 0x20), keeper)
            mstore(add(buffer, 0x40), condition)
            hash := keccak256(buffer, 0x60)
        }
    }

    /// A notary-mode reservation's condition: keccak256 of its notary set as sent, packed:
    /// the threshold (1 byte), the number of members (1 byte), then each member's
    /// address (20 bytes). Packed, the set costs a call no padding, offsets or lengths of
    /// its own, and a member cannot carry dirty upper bits.
    function _notarySetHash(bytes calldata set) internal pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            calldatacopy(buffer, set.offset, set.length)
            hash := keccak256(buffer, set.length)
        }
    }

    /// A notary set's threshold and number of members, its first two bytes. A set shorter
    /// than two bytes reads whatever calldata follows it: the caller checks the set's
    /// length against the count (a count read so is never short enough to pass).
    function _head(bytes calldata set) internal pure returns (uint256 threshold, uint256 count) {
        assembly ("memory-safe") {
            let head := calldataload(set.offset)
            threshold := byte(0, head)
            count := byte(1, head)
        }
    }

    /// The `index`th member of a notary set (see `_notarySetHash`); the caller keeps
    /// `index` below the set's count.
    function _member(bytes calldata set, uint256 index) internal pure returns (address member) {
        assembly ("memory-safe") {
            member := shr(96, calldataload(add(set.offset, add(2, mul(index, 20)))))
        }
    }

    /// A certificate as a certificate entry point takes it: the notary set the
    /// reservation committed to (see `_notarySetHash`), then the signatures, r||s||v
    /// (65 bytes each, v = 27 or 28). Split at the set's end, which its count byte gives.
    function _splitCertificate(bytes calldata certificate)
        internal
        pure
        returns (bytes calldata set, bytes calldata signatures)
    {
        uint256 length = certificate.length;
        (, uint256 count) = _head(certificate);
        uint256 setLength = 2 + 20 * count;
        if (setLength > length) revert MalformedCertificate(length);
        assembly ("memory-safe") {
            set.offset := certificate.offset
            set.length := setLength
            signatures.offset := add(certificate.offset, setLength)
            signatures.length := sub(length, setLength)
        }
    }

    /// The EIP-712 digest the notaries sign (`interlock_core::decision_digest`):
    /// keccak256("\x19\x01" || DOMAIN_SEPARATOR || keccak256(abi.encode(DECISION_TYPEHASH,
    /// dealId, decision))).
    function _decisionDigest(bytes32 dealId, uint8 decision) internal view returns (bytes32 digest) {
        bytes32 typeHash = DECISION_TYPEHASH;
        bytes32 domain = DOMAIN_SEPARATOR;
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            mstore(buffer, typeHash)
            mstore(add(buffer, 0x20), dealId)
            mstore(add(buffer, 0x40), decision)
            let structHash := keccak256(buffer, 0x60)
            mstore(buffer, hex"1901")
            mstore(add(buffer, 0x02), domain)
            mstore(add(buffer, 0x22), structHash)
            digest := keccak256(buffer, 0x42)
        }
    }

    // ---------------------------------------------------------------- internals

    /// Records a reservation whose asset its entry point has checked; the sender is its
    /// owner. Its slot holds the commitment XOR `mark` (zero for a plain reservation,
    /// `INSPECTION_MARK` for an inspected one); `Reserved` carries the commitment itself.
    function _reserve(
        bytes32 dealId,
        uint256 offer,
        address keeper,
        bytes32 condition,
        address token,
        uint256 value,
        bytes32 mark
    ) internal {
        address beneficiary = _party(offer);
        if (beneficiary == address(0)) revert ZeroBeneficiary();
        if (beneficiary == msg.sender || keeper == msg.sender) revert SelfDealing(msg.sender);
        uint8 leg = uint8(offer >> LEG_SHIFT);
        // LEG_PAYMENT or LEG_DELIVERY, in one comparison: 0 wraps to the largest uint8.
        unchecked {
            if (leg - LEG_PAYMENT > LEG_DELIVERY - LEG_PAYMENT) revert InvalidLeg(leg);
        }
        uint256 expiryMs = _expiryMs(offer);
        uint256 nowMs = _nowMs();
        if (expiryMs <= nowMs) revert ExpiryInPast(uint64(expiryMs), nowMs);
        bytes32 id = _reservationId(dealId, leg);
        if (_load(id) != 0) revert AlreadyReserved(id);

        uint256 held = (uint256(uint160(msg.sender)) << PARTY_SHIFT) | (offer & FIELDS_MASK);
        bytes32 committed = _commitment(held, token, value, _partiesHash(beneficiary, keeper, condition));
        _store(id, committed ^ mark);
        emit Reserved(id, committed);
    }

    /// Takes a token leg's asset from its owner, the sender; the native coin came with the
    /// call. Called after `_reserve` (interactions last): a token that calls back finds the
    /// reservation recorded.
    function _takeToken(uint256 offer, address token, uint256 value) internal {
        uint8 kind = uint8(offer);
        if (kind == ASSET_ERC20) {
            IERC20(token).safeTransferFrom(msg.sender, address(this), value);
        } else if (kind == ASSET_ERC721) {
            IERC721(token).transferFrom(msg.sender, address(this), value);
        }
    }

    function _requireAsset(uint8 kind, address token, uint256 value) internal view {
        if (kind == ASSET_NATIVE) {
            if (token != address(0)) revert InvalidAsset(kind, token);
            if (value == 0) revert ZeroAmount();
            if (msg.value != value) revert WrongNativeValue(value, msg.value);
            return;
        }
        if ((kind != ASSET_ERC20 && kind != ASSET_ERC721) || token == address(0)) revert InvalidAsset(kind, token);
        if (kind == ASSET_ERC20 && value == 0) revert ZeroAmount();
        if (msg.value != 0) revert WrongNativeValue(0, msg.value);
    }

    /// Reverts with the reason unless reservation `id` is open and committed to `expected`.
    function _requireOpen(bytes32 id, bytes32 expected) internal view {
        bytes32 stored = _load(id);
        if (stored != expected) {
            if (stored == 0) revert UnknownReservation(id);
            if (stored == EXECUTED) revert AlreadyExecuted(id);
            if (stored == CANCELLED) revert AlreadyCancelled(id);
            revert TermsMismatch(id);
        }
    }

    /// The id of the reservation of `dealId` with these terms and notary set, and the
    /// commitment to them. No mode check, as in `_executeHashlock`: the held word's mode
    /// is committed, and no notary set hashes to a hashlock reservation's condition (a
    /// sha256 output).
    function _notaryCommitment(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        bytes calldata set
    ) internal view returns (bytes32 id, bytes32 committed) {
        id = _reservationId(dealId, uint8(held >> LEG_SHIFT));
        bytes32 parties = _partiesHash(beneficiary, keeper, _notarySetHash(set));
        committed = _commitment(held, token, value, parties);
    }

    function _requireExecutor(bytes32 id, address beneficiary, address keeper) internal view {
        // `msg.sender` is never zero, so a zero keeper matches no one.
        if (msg.sender != beneficiary && msg.sender != keeper) revert NotBeneficiary(id, beneficiary, msg.sender);
    }

    function _requireMode(uint256 word, uint8 mode) internal pure {
        uint8 found = uint8(word >> MODE_SHIFT);
        if (found != mode) revert WrongMode(mode, found);
    }

    /// A set a reservation may commit to: 1 <= threshold <= members <= NOTARIES_MAX,
    /// distinct and non-zero, and exactly as long as its count says.
    function _requireValidNotarySet(bytes calldata set) internal pure {
        (uint256 threshold, uint256 count) = _head(set);
        if (set.length != 2 + 20 * count || threshold == 0 || threshold > count || count > NOTARIES_MAX) {
            revert InvalidNotarySet(threshold, count);
        }
        for (uint256 i = 0; i < count; ++i) {
            address member = _member(set, i);
            if (member == address(0)) revert InvalidNotarySet(threshold, count);
            for (uint256 j = 0; j < i; ++j) {
                if (_member(set, j) == member) revert InvalidNotarySet(threshold, count);
            }
        }
    }

    /// At least the set's threshold of its distinct members signed (dealId, decision);
    /// every signature present must be valid and by a member.
    function _requireCertificate(bytes32 dealId, uint8 decision, bytes calldata set, bytes calldata signatures)
        internal
        view
    {
        uint256 length = signatures.length;
        if (length % 65 != 0 || length > 65 * NOTARIES_MAX) revert MalformedCertificate(length);
        bytes32 digest = _decisionDigest(dealId, decision);
        uint256 signers = length / 65;
        // Bit i set: member i has signed. The set holds at most NOTARIES_MAX members.
        uint256 seen = 0;
        for (uint256 index = 0; index < signers; ++index) {
            address signer = _recover(digest, signatures, index);
            uint256 bit = _memberBit(set, signer);
            if (bit == 0) revert SignerNotInSet(index, signer);
            if (seen & bit != 0) revert DuplicateSigner(index, signer);
            seen |= bit;
        }
        (uint256 threshold,) = _head(set);
        if (signers < threshold) revert BelowThreshold(signers, threshold);
    }

    /// Who signed `digest` with the `index`th 65-byte r||s||v signature of `signatures`.
    /// Refuses what OpenZeppelin's ECDSA refuses: an s in the upper half of the curve's
    /// order (a malleable twin) and anything `ecrecover` finds no signer for (a v other
    /// than 27 or 28, an r or s out of range). The caller has checked that the signature
    /// lies within `signatures`.
    function _recover(bytes32 digest, bytes calldata signatures, uint256 index) internal view returns (address signer) {
        assembly ("memory-safe") {
            let at := add(signatures.offset, mul(index, 65))
            let s := calldataload(add(at, 0x20))
            if iszero(gt(s, HALF_ORDER)) {
                let buffer := mload(0x40)
                mstore(buffer, digest)
                mstore(add(buffer, 0x20), byte(0, calldataload(add(at, 0x40))))
                mstore(add(buffer, 0x40), calldataload(at))
                mstore(add(buffer, 0x60), s)
                // A refused input returns nothing and leaves the zero in place.
                mstore(0, 0)
                pop(staticcall(gas(), 1, buffer, 0x80, 0, 0x20))
                signer := mload(0)
            }
        }
        if (signer == address(0)) revert BadSignature(index);
    }

    /// 1 << i where member i of `set` is `signer` (the first such i), or 0 if none is.
    function _memberBit(bytes calldata set, address signer) internal pure returns (uint256 bit) {
        (, uint256 count) = _head(set);
        assembly ("memory-safe") {
            let at := add(set.offset, 2)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                if eq(shr(96, calldataload(add(at, mul(i, 20)))), signer) {
                    bit := shl(i, 1)
                    break
                }
            }
        }
    }

    /// Moves the reserved asset (the kind `held` names) out of escrow to `to`. On execute
    /// an ERC-721 goes by `safeTransferFrom`, so a beneficiary contract that cannot hold it
    /// refuses it (and the reservation can still be cancelled later); on cancel it goes by
    /// `transferFrom`, so an owner can always get back what it locked.
    function _payOut(uint256 held, address token, uint256 value, address to, bool checkReceiver) internal {
        uint8 kind = uint8(held);
        if (kind == ASSET_NATIVE) {
            bool sent;
            assembly ("memory-safe") {
                // No return data is copied: a recipient cannot make us pay for a large one.
                sent := call(gas(), to, value, 0, 0, 0, 0)
            }
            if (!sent) revert NativeTransferFailed(to);
        } else if (kind == ASSET_ERC20) {
            IERC20(token).safeTransfer(to, value);
        } else if (checkReceiver) {
            IERC721(token).safeTransferFrom(address(this), to, value);
        } else {
            IERC721(token).transferFrom(address(this), to, value);
        }
    }

    /// The address a leg word names (the beneficiary of an offer, the owner of a held word).
    function _party(uint256 word) internal pure returns (address) {
        return address(uint160(word >> PARTY_SHIFT));
    }

    /// `held` with the sender as its owner when it names none: an owner cancelling its
    /// own reservation need not send its address. No reservation has a zero owner.
    function _withSender(uint256 held) internal view returns (uint256) {
        if (_party(held) != address(0)) return held;
        return held | (uint256(uint160(msg.sender)) << PARTY_SHIFT);
    }

    function _expiryMs(uint256 word) internal pure returns (uint256) {
        return uint64(word >> EXPIRY_SHIFT);
    }

    function _nowMs() internal view returns (uint256) {
        // A block time times 1000 overflows no uint256.
        unchecked {
            return block.timestamp * 1000;
        }
    }

    function _sha256(bytes32 word) internal view returns (bytes32 hash) {
        assembly ("memory-safe") {
            mstore(0, word)
            if iszero(staticcall(gas(), 2, 0, 0x20, 0, 0x20)) { revert(0, 0) }
            hash := mload(0)
        }
    }

    function _load(bytes32 id) internal view returns (bytes32 slot) {
        assembly ("memory-safe") {
            slot := sload(id)
        }
    }

    function _store(bytes32 id, bytes32 slot) internal {
        assembly ("memory-safe") {
            sstore(id, slot)
        }
    }
}
