"""The local lab: simulated fleets and lab set-up (``mco-py lab ...``)."""
