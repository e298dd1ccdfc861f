"""Shotbank's chain layer: everything validators and trainers need without the server.

- :mod:`~shotbank.chain.abi` -- ABIs and bytecode shipped with the package
- :mod:`~shotbank.chain.contracts` -- typed wrappers of the four contracts
- :mod:`~shotbank.chain.deployments` / :mod:`~shotbank.chain.deploy` -- where they live, and deploying them
- :mod:`~shotbank.chain.eip712` -- epoch-root typed data, signing and verification
- :mod:`~shotbank.chain.siwe` -- Sign-In with Ethereum messages
- :mod:`~shotbank.chain.merkle` -- OpenZeppelin-compatible StandardMerkleTree
- :mod:`~shotbank.chain.rpc` -- node connections with read retries
- :mod:`~shotbank.chain.outbox` -- crash-safe transaction sending
- :mod:`~shotbank.chain.indexer` -- reorg-aware event indexing
- :mod:`~shotbank.chain.devnode` -- a local anvil for development and tests
- :mod:`~shotbank.chain.errors` -- the exception tree

Import what you need from the submodules; this package re-exports the common names.
"""
