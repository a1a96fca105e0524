"""API keys, balances and the ledger: every change of a balance is one ledger entry."""
