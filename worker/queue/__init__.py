"""Redis streams: names of keys, the connection, job entries (consume, claim, ack, dead-letter) and events."""
