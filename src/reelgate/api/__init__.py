"""HTTP surfaces: thin routers that parse, authenticate, call services and shape responses."""
