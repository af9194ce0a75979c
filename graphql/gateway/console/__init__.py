"""The partner console: server-rendered pages at ``/console``, built only on the public GraphQL API."""
