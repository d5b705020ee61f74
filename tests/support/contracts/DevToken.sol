// SPDX-License-Identifier: MIT
// A minimal ERC-20 for tests: the deployer gets the whole supply; transfer only, which is
// all the chain watcher reads (the Transfer event). Built by build_dev_token.sh.
pragma solidity ^0.8.20;

contract DevToken {
    string public constant name = "Dev Tether";
    string public constant symbol = "USDT";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(uint256 supply) {
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
