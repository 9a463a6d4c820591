"""The service runtime every Lightwire service is built on: codec, Kafka I/O, logging, ops endpoints, shutdown."""
