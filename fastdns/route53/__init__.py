"""The Route 53 compatible management API (REST, XML, version 2013-04-01)."""
