// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// An ERC-20 anyone may mint, for tests and the gas benchmark.
contract TestToken is ERC20 {
    constructor() ERC20("Interlock Test Token", "ITT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
