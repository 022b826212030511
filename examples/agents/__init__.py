"""Reference agents: a graceful router (:mod:`.router`) and agents with known flaws (:mod:`.flawed`)."""
