// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// An ERC-721 anyone may mint, for tests and the gas benchmark.
contract TestItems is ERC721 {
    constructor() ERC721("Interlock Test Items", "ITI") {}

    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }
}
