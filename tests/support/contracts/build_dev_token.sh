#!/bin/sh
# Rebuilds DevToken.json (ABI and creation bytecode) from DevToken.sol with the npm solc
# package (solcjs), pinned, so tests need no compiler: `sh build_dev_token.sh`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm install --no-audit --no-fund --silent solc@0.8.28 >/dev/null
node_modules/.bin/solcjs --optimize --bin --abi -o out "$here/DevToken.sol" >/dev/null
bin=$(cat out/*DevToken.bin)
abi=$(cat out/*DevToken.abi)
printf '{"compiler": "solc 0.8.28 (npm solc, --optimize)", "abi": %s, "bytecode": "0x%s"}\n' \
  "$abi" "$bin" > "$here/DevToken.json"
