// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Replayer} from "./Replayer.sol";

/// A malicious ERC-20 that re-enters the escrow from inside every transfer of itself:
/// it is its own beneficiary, so a replayed `execute` passes the sender check and only
/// the escrow's state can stop it.
contract ReentrantToken is ERC20, Replayer {
    constructor() ERC20("Reentrant Token", "RET") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        _replay();
    }
}
