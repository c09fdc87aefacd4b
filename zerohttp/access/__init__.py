"""Who may ask, and from where: basic auth, CORS, and the client behind a trusted proxy."""
