"""The partner-facing GraphQL gateway: each partner sees exactly its consented slice of a survivor's pathway."""
