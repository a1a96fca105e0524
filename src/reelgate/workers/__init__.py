"""Workers run tasks: claim, generate on a backend, store the files, finish."""
