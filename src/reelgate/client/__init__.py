"""`reelgate generate` and `reelgate videos ...`: a command-line client of the Videos API, over HTTP only.

It works against any reelgate, or any server that speaks OpenAI's Videos API (`/v1/videos`).
"""
