"""The GraphQL API, one module per domain; ``gateway.schema`` merges them."""
