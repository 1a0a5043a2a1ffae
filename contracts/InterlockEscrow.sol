// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

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
/// to. Small fields share one word (see `commitment`).
///
/// A deal with an inspection period reserves its notary-mode legs with `INSPECTED` set:
/// a commit certificate then *holds* the asset in escrow for its beneficiary (the slot
/// keeps the commitment, marked held), and only the notaries' verdict moves it:
/// `releaseInspectedByNotaries` pays the beneficiary, `reverseInspectedByNotaries` the
/// owner. A held leg never lapses: neither its backstop expiry nor an abort certificate
/// cancels it.
///
/// Tokens whose balances change other than by the amounts transferred (fee-on-transfer,
/// rebasing) are not supported: the contract pays out exactly what the terms name.
contract InterlockEscrow {
    using SafeERC20 for IERC20;

    uint8 internal constant LEG_PAYMENT = 1;
    uint8 internal constant LEG_DELIVERY = 2;
    uint8 internal constant MODE_HASHLOCK = 1;
    uint8 internal constant MODE_NOTARY = 2;
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
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// Tombstones. A commitment is a keccak256 output and never equals either.
    bytes32 internal constant EXECUTED = bytes32(uint256(1));
    bytes32 internal constant CANCELLED = bytes32(uint256(2));
    /// A held reservation's slot is its commitment XOR this mark: like a commitment it
    /// equals no tombstone, and it is not the commitment, so nothing that executes or
    /// cancels an open reservation accepts it.
    bytes32 internal constant HELD_MARK = keccak256("interlock/escrow/held");

    /// A leg word packs one party's address with the leg's small fields:
    /// bits 255..96 the address, 95..32 the expiry (unix milliseconds; hashlock mode:
    /// execute before, cancel from this time; notary mode: the backstop expiry, from which
    /// anyone may cancel without a certificate), bit 24 `INSPECTED`, 23..16 the leg
    /// (`LEG_*`), 15..8 the mode (`MODE_*`), 7..0 the asset kind (`ASSET_*`). An `offer`
    /// (reserve) names the beneficiary, a `held` word (execute, cancel) the owner; the
    /// rest is the same.
    uint256 private constant PARTY_SHIFT = 96;
    uint256 private constant EXPIRY_SHIFT = 32;
    uint256 private constant LEG_SHIFT = 16;
    uint256 private constant MODE_SHIFT = 8;
    /// Set in a notary-mode leg's word: the leg has an inspection period, so a commit
    /// certificate holds it (`Held`) and a verdict pays it out. The commitment covers
    /// it like every field; hashlock mode ignores it.
    uint256 private constant INSPECTED = 1 << 24;
    /// The bits below the party address.
    uint256 private constant FIELDS_MASK = (1 << 96) - 1;

    bytes24 private constant RESERVATION_ID_TAG = "interlock/reservation/v1";
    bytes32 private constant DECISION_TYPEHASH = keccak256("Decision(bytes32 dealId,uint8 decision)");
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
        _reserve(dealId, offer, keeper, hashlock, address(0), msg.value);
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
        _reserve(dealId, offer, keeper, hashlock, token, value);
        _takeToken(offer, token, value);
    }

    /// Locks a notary-mode leg's asset (with `INSPECTED` set for a deal with an inspection
    /// period). The condition committed is `notarySetHash(notaries, threshold)`, with
    /// 1 <= threshold <= notaries <= NOTARIES_MAX, distinct and non-zero.
    function reserveNotary(
        bytes32 dealId,
        uint256 offer,
        address keeper,
        address token,
        uint256 value,
        address[] calldata notaries,
        uint8 threshold
    ) external payable {
        _requireMode(offer, MODE_NOTARY);
        _requireValidNotarySet(notaries, threshold);
        _requireAsset(uint8(offer), token, value);
        _reserve(dealId, offer, keeper, _notarySetHash(notaries, threshold), token, value);
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
    /// keeper, with a commit certificate: `signatures` is the concatenation of r||s||v
    /// (65 bytes each, v = 27 or 28) by distinct members of the committed notary set,
    /// at least `threshold` of them. A certificate executes while the reservation is
    /// open, even past the backstop: the notaries committed, which is what both
    /// parties agreed to. An inspected reservation is held instead (`Held`) until the
    /// notaries' verdict.
    function executeNotary(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        if (beneficiary == address(0)) beneficiary = msg.sender;
        bytes32 id = _requireOpenNotary(dealId, held, token, value, beneficiary, keeper, notaries, threshold);
        _requireExecutor(id, beneficiary, keeper);
        _requireCertificate(dealId, DECISION_COMMIT, notaries, threshold, signatures);

        if (held & INSPECTED == 0) {
            _store(id, EXECUTED);
            emit ExecutedByCertificate(id);
            _payOut(held, token, value, beneficiary, true);
        } else {
            // Held, not paid: the asset waits in escrow for the verdict. The slot
            // still holds the commitment `_requireOpenNotary` matched.
            _store(id, _load(id) ^ HELD_MARK);
            emit Held(id);
        }
    }

    // ---------------------------------------------------------------- cancel

    /// Returns the asset to its owner once the expiry (hashlock) or backstop expiry
    /// (notary) has passed. Anyone may call it; the asset always goes to the owner
    /// `held` names. `parties` is `partiesHash(beneficiary, keeper, condition)`.
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
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        held = _withSender(held);
        bytes32 id = _requireOpenNotary(dealId, held, token, value, beneficiary, keeper, notaries, threshold);
        _requireCertificate(dealId, DECISION_ABORT, notaries, threshold, signatures);

        _store(id, CANCELLED);
        emit Cancelled(id);
        _payOut(held, token, value, _party(held), false);
    }

    // ---------------------------------------------------------------- verdicts
    //
    // A held reservation moves on the notaries' verdict: a release pays the beneficiary,
    // a reverse pays the owner back. Anyone may present it (a keeper does when the window
    // closes); the asset goes where the verdict says, whoever sends it. The arguments are
    // `executeNotary`'s, with `held` naming the owner and `beneficiary` given, and
    // `signatures` certify the verdict. The same verdict resolves both legs of the deal,
    // and the slot then holds a tombstone: a verdict is final.
    //
    // Both take exactly `executeNotary`'s arguments and are named so that their
    // selectors sort after every other: the dispatcher compares selectors in order and
    // the two share `executeNotary`'s argument decoding, so no operation of a deal
    // without an inspection period pays for them.

    /// Pays a held reservation to its beneficiary on a release verdict.
    function releaseInspectedByNotaries(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        bytes32 id = _requireHeld(dealId, held, token, value, beneficiary, keeper, notaries, threshold);
        _requireCertificate(dealId, DECISION_RELEASE, notaries, threshold, signatures);

        _store(id, EXECUTED);
        emit Released(id);
        // By `transferFrom` for an ERC-721: a verdict cannot be refused by its recipient.
        _payOut(held, token, value, beneficiary, false);
    }

    /// Pays a held reservation back to its owner on a reverse verdict.
    function reverseInspectedByNotaries(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        address[] calldata notaries,
        uint8 threshold,
        bytes calldata signatures
    ) external {
        bytes32 id = _requireHeld(dealId, held, token, value, beneficiary, keeper, notaries, threshold);
        _requireCertificate(dealId, DECISION_REVERSE, notaries, threshold, signatures);

        _store(id, CANCELLED);
        emit Cancelled(id);
        _payOut(held, token, value, _party(held), false);
    }

    // ---------------------------------------------------------------- views

    /// The core's reservation id: sha256("interlock/reservation/v1" || dealId || leg).
    function _reservationId(bytes32 dealId, uint8 leg) private view returns (bytes32 id) {
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
        private
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

    /// The id of the reservation of `dealId` held with these terms and notary set;
    /// reverts with the reason if there is none. No mode check: only `executeNotary`
    /// holds a reservation, and only one whose committed word has notary mode and
    /// `INSPECTED`.
    function _requireHeld(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        address[] calldata notaries,
        uint8 threshold
    ) private view returns (bytes32 id) {
        id = _reservationId(dealId, uint8(held >> LEG_SHIFT));
        bytes32 parties = _partiesHash(beneficiary, keeper, _notarySetHash(notaries, threshold));
        bytes32 committed = _commitment(held, token, value, parties);
        bytes32 stored = _load(id);
        if (stored != committed ^ HELD_MARK) {
            if (stored == committed) revert NotHeld(id);
            _requireOpen(id, committed);
        }
    }

    /// Who may execute a reservation, and with what: keccak256(abi.encode(beneficiary,
    /// keeper, condition)); the condition is sha256 of the secret (hashlock mode) or
    /// `notarySetHash` (notary mode).
    function _partiesHash(address beneficiary, address keeper, bytes32 condition) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            mstore(buffer, beneficiary)
            mstore(add(buffer, 0x20), keeper)
            mstore(add(buffer, 0x40), condition)
            hash := keccak256(buffer, 0x60)
        }
    }

    /// A notary-mode reservation's condition: keccak256(abi.encode(notaries, threshold)),
    /// laid out by hand: the head (the array's offset, 0x40, then the threshold), the
    /// array's length, its members. A member with dirty upper bits hashes to another
    /// condition than the one committed: reserve reads every member checked.
    function _notarySetHash(address[] calldata notaries, uint8 threshold) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            let size := shl(5, notaries.length)
            mstore(buffer, 0x40)
            mstore(add(buffer, 0x20), threshold)
            mstore(add(buffer, 0x40), notaries.length)
            calldatacopy(add(buffer, 0x60), notaries.offset, size)
            hash := keccak256(buffer, add(size, 0x60))
        }
    }

    /// The EIP-712 digest the notaries sign (`interlock_core::decision_digest`):
    /// keccak256("\x19\x01" || DOMAIN_SEPARATOR || keccak256(abi.encode(DECISION_TYPEHASH,
    /// dealId, decision))).
    function _decisionDigest(bytes32 dealId, uint8 decision) private view returns (bytes32 digest) {
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

    /// Records a reservation whose asset its entry point has checked; the sender is its owner.
    function _reserve(bytes32 dealId, uint256 offer, address keeper, bytes32 condition, address token, uint256 value)
        private
    {
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
        _store(id, committed);
        emit Reserved(id, committed);
    }

    /// Takes a token leg's asset from its owner, the sender; the native coin came with the
    /// call. Called after `_reserve` (interactions last): a token that calls back finds the
    /// reservation recorded.
    function _takeToken(uint256 offer, address token, uint256 value) private {
        uint8 kind = uint8(offer);
        if (kind == ASSET_ERC20) {
            IERC20(token).safeTransferFrom(msg.sender, address(this), value);
        } else if (kind == ASSET_ERC721) {
            IERC721(token).transferFrom(msg.sender, address(this), value);
        }
    }

    function _requireAsset(uint8 kind, address token, uint256 value) private view {
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
    function _requireOpen(bytes32 id, bytes32 expected) private view {
        bytes32 stored = _load(id);
        if (stored != expected) {
            if (stored == 0) revert UnknownReservation(id);
            if (stored == EXECUTED) revert AlreadyExecuted(id);
            if (stored == CANCELLED) revert AlreadyCancelled(id);
            revert TermsMismatch(id);
        }
    }

    /// The id of an open notary-mode (or inspected) reservation of `dealId` with these
    /// terms and notary set; reverts with the reason if there is none.
    function _requireOpenNotary(
        bytes32 dealId,
        uint256 held,
        address token,
        uint256 value,
        address beneficiary,
        address keeper,
        address[] calldata notaries,
        uint8 threshold
    ) private view returns (bytes32 id) {
        // No mode check, as in `_executeHashlock`: the held word's mode is committed, and
        // no notary set hashes to a hashlock reservation's condition (a sha256 output).
        id = _reservationId(dealId, uint8(held >> LEG_SHIFT));
        bytes32 parties = _partiesHash(beneficiary, keeper, _notarySetHash(notaries, threshold));
        _requireOpen(id, _commitment(held, token, value, parties));
    }

    function _requireExecutor(bytes32 id, address beneficiary, address keeper) private view {
        // `msg.sender` is never zero, so a zero keeper matches no one.
        if (msg.sender != beneficiary && msg.sender != keeper) revert NotBeneficiary(id, beneficiary, msg.sender);
    }

    function _requireMode(uint256 word, uint8 mode) private pure {
        uint8 found = uint8(word >> MODE_SHIFT);
        if (found != mode) revert WrongMode(mode, found);
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
        bytes32 digest = _decisionDigest(dealId, decision);
        uint256 signers = length / 65;
        // Bit i set: notaries[i] has signed. The set holds at most NOTARIES_MAX members.
        uint256 seen = 0;
        for (uint256 index = 0; index < signers; ++index) {
            address signer = _recover(digest, signatures, index);
            uint256 bit = _memberBit(notaries, signer);
            if (bit == 0) revert SignerNotInSet(index, signer);
            if (seen & bit != 0) revert DuplicateSigner(index, signer);
            seen |= bit;
        }
        if (signers < threshold) revert BelowThreshold(signers, threshold);
    }

    /// Who signed `digest` with the `index`th 65-byte r||s||v signature of `signatures`.
    /// Refuses what OpenZeppelin's ECDSA refuses: an s in the upper half of the curve's
    /// order (a malleable twin) and anything `ecrecover` finds no signer for (a v other
    /// than 27 or 28, an r or s out of range). The caller has checked that the signature
    /// lies within `signatures`.
    function _recover(bytes32 digest, bytes calldata signatures, uint256 index) private view returns (address signer) {
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

    /// 1 << i where notaries[i] is `signer` (the first such i), or 0 if none is. Members are
    /// compared as whole words: one with dirty upper bits equals no signer.
    function _memberBit(address[] calldata notaries, address signer) private pure returns (uint256 bit) {
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, notaries.length) { i := add(i, 1) } {
                if eq(calldataload(add(notaries.offset, shl(5, i))), signer) {
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
    function _payOut(uint256 held, address token, uint256 value, address to, bool checkReceiver) private {
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
    function _party(uint256 word) private pure returns (address) {
        return address(uint160(word >> PARTY_SHIFT));
    }

    /// `held` with the sender as its owner when it names none: an owner cancelling its
    /// own reservation need not send its address. No reservation has a zero owner.
    function _withSender(uint256 held) private view returns (uint256) {
        if (_party(held) != address(0)) return held;
        return held | (uint256(uint160(msg.sender)) << PARTY_SHIFT);
    }

    function _expiryMs(uint256 word) private pure returns (uint256) {
        return uint64(word >> EXPIRY_SHIFT);
    }

    function _nowMs() private view returns (uint256) {
        // A block time times 1000 overflows no uint256.
        unchecked {
            return block.timestamp * 1000;
        }
    }

    function _sha256(bytes32 word) private view returns (bytes32 hash) {
        assembly ("memory-safe") {
            mstore(0, word)
            if iszero(staticcall(gas(), 2, 0, 0x20, 0, 0x20)) { revert(0, 0) }
            hash := mload(0)
        }
    }

    function _load(bytes32 id) private view returns (bytes32 slot) {
        assembly ("memory-safe") {
            slot := sload(id)
        }
    }

    function _store(bytes32 id, bytes32 slot) private {
        assembly ("memory-safe") {
            sstore(id, slot)
        }
    }
}
