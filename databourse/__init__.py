"""databourse: the domain of a data exchange pipeline (no Prefect here; see flows/ and tasks/)."""
