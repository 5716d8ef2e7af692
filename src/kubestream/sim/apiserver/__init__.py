"""The HTTP API server: routing, authn/authz, flow control, faults, LIST/WATCH options, discovery,
OpenAPI, Table negotiation and field validation, with every request accounted."""
