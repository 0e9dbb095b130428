"""Identity: which source records are the same person, analysts' link and household decisions,
and batch linking of files of people."""
