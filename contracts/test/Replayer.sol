// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// The attack both malicious test contracts share: act as a party (reserve, execute,
/// cancel through `act`, so the escrow sees this contract as `msg.sender`), and, once
/// armed, replay one call into the escrow from the middle of a transfer. The outcome of
/// the replay is recorded instead of propagated, so the outer operation completes and a
/// test can read what the re-entrant call got.
abstract contract Replayer {
    address public replayTarget;
    bytes public replayCall;
    bool public replayed;
    bool public replaySucceeded;
    bytes public replayRevertData;

    /// Replays `data` into `target` at the next transfer that reaches this contract.
    function arm(address target, bytes calldata data) external {
        replayTarget = target;
        replayCall = data;
        replayed = false;
    }

    /// Calls `target` as this contract, reverting with the callee's revert data.
    function act(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function _replay() internal {
        if (replayCall.length == 0 || replayed) return;
        replayed = true;
        (replaySucceeded, replayRevertData) = replayTarget.call(replayCall);
    }
}
