"""The operator's side: the admin API's wire shapes and one port with two adapters.

`AdminPort` (`base.py`) is what the `/admin` router and the `reelgate keys|usage` commands call:
`LocalAdmin` runs it against the database, `RemoteAdmin` against a running server's admin API.
"""
