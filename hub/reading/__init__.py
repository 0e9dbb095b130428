"""Reading a child's record: the reader, the record service's fan-out to the sources, circuit
breakers and oversight of access."""
