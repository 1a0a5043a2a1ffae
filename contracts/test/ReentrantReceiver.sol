// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {Replayer} from "./Replayer.sol";

/// A malicious beneficiary that re-enters the escrow when it receives an ERC-721
/// (`onERC721Received`) or the native coin (`receive`).
contract ReentrantReceiver is IERC721Receiver, Replayer {
    function onERC721Received(address, address, uint256, bytes calldata) external returns (bytes4) {
        _replay();
        return IERC721Receiver.onERC721Received.selector;
    }

    receive() external payable {
        _replay();
    }
}
