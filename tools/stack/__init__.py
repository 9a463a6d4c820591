"""The local stack: the Apache Kafka broker, the analytics store and the Lightwire services, run on 127.0.0.1."""
